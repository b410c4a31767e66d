"""Recorded states survive a crash: the recorder spools on the calling thread before
it returns, and a process SIGKILLed at a random moment (while training, writing to
the store or replaying an earlier run's spool) loses no handed state and stores none
twice once a later recorder has replayed its spool. With an embedded store on disk
the recorder delivers through a process of its own: killing the training process
makes it exit and release the store, killing it makes the recorder start another
that replays the spool; either way every state is stored exactly once."""

import itertools
import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript
from servers.pinecone_server import API_KEY, PineconeServer

from qstore_pl.callbacks import ExecutionRecord
from qstore_pl.db import StateRecorder, open_store

N, BATCH, KILLS = 4, 8, 3


def ansatz(x, w):
    qml.AngleEmbedding(x, wires=range(N), rotation="X")
    qml.StronglyEntanglingLayers(w, wires=range(N))
    return qml.expval(qml.Z(0))


def train(store_path, spool, log, run: int) -> None:
    """Train until killed, logging each call once it has returned (and how many states
    the recorder's delivery process has stored so far)."""
    recorder = StateRecorder(
        open_store(path=store_path), spool=spool, tags=[f"run{run}"], max_delay=0.01
    )
    assert recorder.delivery_pid is not None  # the default for a store on disk
    circuit = qml.QNode(ansatz, qml.device("qstore.router", wires=N, callbacks=[recorder]))
    rng = np.random.default_rng(run)
    w = rng.uniform(0, np.pi, (2, N, 3))
    with open(log, "w") as out:
        for call in itertools.count():
            circuit(rng.uniform(0, np.pi, (BATCH, N)), w)
            # returned: its states were handed over
            print(call, recorder.spool.delivered(), file=out, flush=True)


def logged_calls(log: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()]


def handed_rows(run: int, calls: int) -> set:
    """The encoding angles of every state a run handed over in its first ``calls`` calls."""
    rng = np.random.default_rng(run)
    rng.uniform(0, np.pi, (2, N, 3))
    return {
        (f"run{run}", tuple(np.round(row, 9)))
        for _ in range(calls)
        for row in rng.uniform(0, np.pi, (BATCH, N))
    }


def test_no_state_is_lost_or_stored_twice_across_sigkills_at_random_moments(tmp_path):
    store_path, spool = tmp_path / "store", tmp_path / "spool.sqlite"
    # forked from a warm process (imports done, kernels compiled): a kill lands within
    # a second of training rather than after a cold start
    warm = qml.QNode(ansatz, qml.device("qstore.router", wires=N))
    warm(np.zeros((BATCH, N)), np.zeros((2, N, 3)))
    fork = multiprocessing.get_context("fork")
    moments = np.random.default_rng().uniform(0.0, 1.0, KILLS)
    expected: set = set()
    for run, moment in enumerate(moments):
        log = tmp_path / f"run{run}.log"
        child = fork.Process(target=train, args=(store_path, spool, log, run))
        child.start()
        deadline = time.monotonic() + 180
        # the first run is killed while its delivery process holds the store (it has
        # stored states); the others soon after training began, while it is starting
        while not (log.exists() and log.read_text() and (run or logged_calls(log)[-1][1] > 0)):
            assert child.is_alive(), "the training process died before it started"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(moment)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        expected |= handed_rows(run, len(logged_calls(log)))

    # the next open waits for the last delivery process to exit and release the store
    store = open_store(path=store_path)
    recorder = StateRecorder(store, spool=spool, delivery="thread")
    recorder.flush(timeout=120)
    recorder.close()
    stored = Counter(
        (s.metadata["tags"][0], tuple(np.round(json.loads(s.metadata["parameters"])[:N], 9)))
        for s in store.states()
    )
    store.close()
    assert expected <= set(stored), f"{len(expected - set(stored))} handed states were lost"
    assert max(stored.values()) == 1, "a state was stored twice"
    # at most the call in flight at each kill is stored beyond what the logs show
    assert len(stored) - len(expected) <= KILLS * BATCH


def test_a_killed_delivery_process_is_replaced_and_every_state_is_stored_once(tmp_path):
    """The delivery process SIGKILLed at a random moment while it delivers:
    training goes on, the recorder starts another process that replays the spool,
    and the training process's queries (answered by the delivery process) see every
    state once."""
    store = open_store(path=tmp_path / "store")
    recorder = StateRecorder(
        store, spool=tmp_path / "spool.sqlite", tags=["run0"], max_delay=0.01, batch_size=16
    )
    circuit = qml.QNode(ansatz, qml.device("qstore.router", wires=N, callbacks=[recorder]))
    rng = np.random.default_rng(0)
    w = rng.uniform(0, np.pi, (2, N, 3))
    moments = np.random.default_rng().uniform(0.0, 0.5, 1)
    calls, killed = 0, []
    try:
        for moment in moments:
            delivered, deadline = recorder.spool.delivered(), time.monotonic() + 180
            while recorder.spool.delivered() == delivered:  # this process delivers
                circuit(rng.uniform(0, np.pi, (BATCH, N)), w)
                calls += 1
                assert time.monotonic() < deadline, "the delivery process stored nothing"
            end = time.monotonic() + moment
            while time.monotonic() < end:
                circuit(rng.uniform(0, np.pi, (BATCH, N)), w)
                calls += 1
            killed.append(recorder.delivery_pid)
            os.kill(killed[-1], signal.SIGKILL)
        for _ in range(3):
            circuit(rng.uniform(0, np.pi, (BATCH, N)), w)
            calls += 1
        recorder.flush(timeout=300)
        assert recorder.delivery_pid not in killed
        stats = recorder.stats()
        assert (stats.spooled, stats.delivered, stats.waiting) == (calls * BATCH,) * 2 + (0,)
        stored = Counter(
            (s.metadata["tags"][0], tuple(np.round(json.loads(s.metadata["parameters"])[:N], 9)))
            for s in store.states()  # read through the delivery process
        )
    finally:
        recorder.close()
    assert set(stored) == handed_rows(0, calls)
    assert max(stored.values()) == 1, "a state was stored twice"
    assert store.stats().states == calls * BATCH  # the store is back in this process
    store.close()


def test_states_are_in_the_spool_when_on_execution_returns_while_the_store_is_down(tmp_path):
    server = PineconeServer(dimension=64)
    store = open_store("pinecone", index_host=server.host, api_key=API_KEY)
    server.stop()  # the host is down: handing states over must not wait for it
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", max_backoff=0.2)
    try:
        tape = QuantumScript(
            [qml.RX(np.linspace(0.1, 1.0, 16), 0), qml.CNOT([0, 1])], [qml.expval(qml.Z(0))]
        )
        for call in range(20):
            recorder.on_execution(
                ExecutionRecord(tape, None, "execute", "lightning.qubit", None, 0)
            )
            assert recorder.spool.counts()[0] == 16 * (call + 1)  # durable on return
        assert recorder.stats().delivered == 0
        server.start()
        recorder.flush(timeout=60)
        assert store.stats().namespaces == {"pure-2q": 320}
        assert set(server.accepted_writes.values()) == {1}
        # the circuits were simulated by the recorder's thread: the states are right
        expected = qml.device("default.qubit").execute(tape.copy(measurements=[qml.state()]))
        for row in expected[:3]:
            assert store.query_similar(row, top_k=1)[0].fidelity > 1 - 1e-5
    finally:
        recorder.close(timeout=1)
        server.stop()


def test_a_spooled_circuit_and_its_states_are_replayed_once(tmp_path):
    """A process killed between simulating a spooled circuit and acknowledging its
    states: the next recorder derives the same state ids, so the store holds them once."""
    spool = tmp_path / "spool.sqlite"
    store_path = tmp_path / "store"
    store = open_store(path=store_path)
    first = StateRecorder(store, spool=spool, max_delay=3600, delivery="thread")
    tape = QuantumScript([qml.RY(np.linspace(0, 3, 5), 0), qml.CNOT([0, 1])], [qml.probs()])
    first.on_execution(ExecutionRecord(tape, None, "execute", "lightning.qubit", None, 0))
    (circuit,) = first.spool.circuits(1)
    store.write(first._states_of(circuit))  # delivered once, the process dies before the ack
    first._stop()  # no flush: the spool keeps the circuit, as after a kill
    second = StateRecorder(store, spool=spool, delivery="thread")
    second.flush(timeout=30)
    second.close()
    assert store.stats().namespaces == {"pure-2q": 5}
    store.close()
    assert Path(spool).exists()


def test_a_state_too_wide_for_the_store_is_set_aside_not_lost(tmp_path):
    server = PineconeServer(dimension=16)  # pure states of up to 3 qubits
    store = open_store("pinecone", index_host=server.host, api_key=API_KEY)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite")
    try:
        for wires in (3, 4):
            tape = QuantumScript([qml.Hadamard(w) for w in range(wires)], [qml.probs()])
            states = np.full((1, 2**wires), 2 ** (-wires / 2))
            record = ExecutionRecord(tape, None, "execute", "qstore.batched", None, 0)
            recorder.on_execution(ExecutionRecord(**{**record.__dict__, "states": states}))
        recorder.flush(timeout=30)
        stats = recorder.stats()
        assert (stats.delivered, stats.rejected, stats.waiting) == (1, 1, 0)
        assert "at most 16" in stats.last_error
        assert store.stats().namespaces == {"pure-3q": 1}
    finally:
        recorder.close(timeout=1)
        server.stop()
