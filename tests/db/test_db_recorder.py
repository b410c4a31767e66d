"""StateRecorder on the router device: the states it stores are the circuits' states,
shot runs store measured distributions, an outage loses nothing and duplicates nothing."""

import os
import time
from pathlib import Path

import numpy as np
import pennylane as qml
import pytest
from pennylane.tape import QuantumScript
from servers.pinecone_server import API_KEY, PineconeServer

from qstore_pl.callbacks import ExecutionRecord
from qstore_pl.db import StateRecorder, StoreUnavailableError, open_store

N = 3


def ansatz(x, w):
    qml.AngleEmbedding(x, wires=range(N), rotation="X")
    for i in range(N):
        qml.RY(w[i], wires=i)
    qml.CNOT([0, 1])
    qml.CNOT([1, 2])


@qml.qnode(qml.device("default.qubit", wires=N))
def reference_state(x, w):
    ansatz(x, w)
    return qml.state()


def training_qnode(dev):
    @qml.qnode(dev)
    def circuit(x, w):
        ansatz(x, w)
        return [qml.expval(qml.Z(i)) for i in range(N)]

    return circuit


def test_recorded_states_are_the_circuits_states(tmp_path):
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", tags=["unit"])
    circuit = training_qnode(qml.device("qstore.router", wires=N, callbacks=[recorder]))
    rng = np.random.default_rng(0)
    w = qml.numpy.array(rng.uniform(0, np.pi, N), requires_grad=True)
    batch = rng.uniform(0, np.pi, (4, N))
    qml.grad(lambda w: qml.math.sum(qml.math.stack(circuit(batch, w))))(w)
    circuit(batch[0], w)
    recorder.flush(timeout=30)
    stats = recorder.stats()
    assert stats.spooled == stats.delivered == 5 and stats.waiting == 0
    assert store.stats().namespaces == {"pure-3q": 5}
    for x in [*batch, batch[0]]:
        expected = reference_state(x, np.asarray(w))
        hit = store.query_similar(np.exp(0.3j) * expected, top_k=1)[0]
        assert hit.fidelity == pytest.approx(1.0, abs=1e-5)
        assert hit.metadata["tags"] == ["unit"] and hit.metadata["source"] == "simulated"
        np.testing.assert_allclose(
            eval(hit.metadata["parameters"])[:N], x, atol=1e-12
        )  # the row's own encoding angles


def test_shot_runs_store_measured_distributions_and_hardware_needs_them(tmp_path):
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", hardware_backends={"qpu"})
    dev = qml.device("qstore.router", wires=2, callbacks=[recorder], seed=7)

    @qml.set_shots(2000)
    @qml.qnode(dev)
    def bell():
        qml.Hadamard(0)
        qml.CNOT([0, 1])
        return qml.counts(wires=[0, 1])

    counts = bell()
    tape = QuantumScript([qml.Hadamard(0)], [qml.expval(qml.Z(0))], shots=100)
    recorder.on_execution(ExecutionRecord(tape, 0.1, "execute", "qpu", 100, 1.0, cost=0.3))
    recorder.flush(timeout=30)
    assert recorder.stats().skipped == 1  # hardware expectation values: nothing faithful
    (stored,) = store.states()
    assert stored.kind == "probs" and stored.metadata["source"] == "measured"
    measured = np.array([counts.get(b, 0) for b in ("00", "01", "10", "11")]) / 2000
    np.testing.assert_allclose(stored.state, measured, atol=1e-6)


def test_outage_spools_and_replays_every_state_exactly_once(tmp_path):
    server = PineconeServer(dimension=16)
    store = open_store("pinecone", index_host=server.host, api_key=API_KEY)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", max_backoff=0.2)
    circuit = training_qnode(qml.device("qstore.router", wires=N, callbacks=[recorder]))
    rng = np.random.default_rng(1)
    w = rng.uniform(0, np.pi, N)
    try:
        for _ in range(3):
            circuit(rng.uniform(0, np.pi, N), w)
        recorder.flush(timeout=30)
        server.stop()  # the store dies mid-run; training goes on
        for _ in range(4):
            circuit(rng.uniform(0, np.pi, (2, N)), w)
        with pytest.raises(StoreUnavailableError, match="waiting in the spool"):
            recorder.flush(timeout=3)
        # the recorder's thread spools between send attempts, and the client's own
        # connection retries can outlast the flush above on a busy machine
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = recorder.stats()
            if stats.spooled == 11 and stats.last_error is not None:
                break
            time.sleep(0.05)
        assert stats.spooled == 11 and stats.waiting == 8  # 3 delivered, 4 x 2 spooled
        assert "upsert" in stats.last_error
        server.start()
        recorder.flush(timeout=60)
        assert recorder.stats().delivered == 11
        assert store.stats().namespaces == {"pure-3q": 11}
        assert len(server.accepted_writes) == 11
        assert set(server.accepted_writes.values()) == {1}  # each state sent once
    finally:
        recorder.close(timeout=1)
        server.stop()


def test_a_crashed_runs_spool_is_replayed_by_the_next_recorder(tmp_path):
    server = PineconeServer(dimension=16)
    store = open_store("pinecone", index_host=server.host, api_key=API_KEY)
    server.stop()
    first = StateRecorder(store, spool=tmp_path / "spool.sqlite", max_backoff=0.2)
    circuit = training_qnode(qml.device("qstore.router", wires=N, callbacks=[first]))
    circuit(np.random.default_rng(2).uniform(0, 1, (3, N)), np.zeros(N))
    first.close(timeout=1)  # gives up waiting: the states stay in the spool
    assert first.stats().waiting == 3
    server.start()
    second = StateRecorder(store, spool=tmp_path / "spool.sqlite")
    try:
        second.flush(timeout=30)
        assert store.stats().namespaces == {"pure-3q": 3}
        assert set(server.accepted_writes.values()) == {1}
    finally:
        second.close()
        server.stop()


def thread_niceness(pid: int) -> set[int]:
    """The nice value of each thread of a process (Linux applies nice per thread)."""
    tasks = Path(f"/proc/{pid}/task")
    return {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks.iterdir()}


def test_the_delivery_process_runs_below_training_once_the_leftovers_are_out(tmp_path):
    store = open_store(path=tmp_path / "store")
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite")
    lowered = {max(os.nice(0), 10)}
    try:
        recorder.flush(timeout=60)  # started, nothing left over
        deadline = time.monotonic() + 10
        while thread_niceness(recorder.delivery_pid) != lowered and time.monotonic() < deadline:
            time.sleep(0.05)
        assert thread_niceness(recorder.delivery_pid) == lowered
    finally:
        recorder.close()
        store.close()
