"""The recorder stores the states the backend already computed (qstore.batched keeps
its forward states) instead of simulating each circuit again, and they are the
circuits' states as default.qubit computes them."""

import json

import numpy as np
import pennylane as qml

from qstore_pl.db import StateRecorder, open_store
from qstore_pl.db import circuits as circuits_module

N = 4


def ansatz(x, w):
    qml.AngleEmbedding(x, wires=range(N), rotation="X")
    qml.StronglyEntanglingLayers(w, wires=range(N))


def test_training_states_come_from_the_backend_and_equal_default_qubits(tmp_path, monkeypatch):
    def no_simulation(tape):
        raise AssertionError("the recorder simulated a circuit the backend had run")

    monkeypatch.setattr(circuits_module, "final_states", no_simulation)
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", max_delay=3600)
    dev = qml.device("qstore.router", wires=N, callbacks=[recorder])

    @qml.qnode(dev)
    def circuit(x, w):
        ansatz(x, w)
        return qml.expval(qml.Z(0))

    @qml.qnode(qml.device("default.qubit", wires=N))
    def reference(x, w):
        ansatz(x, w)
        return qml.state()

    rng = np.random.default_rng(3)
    x = rng.uniform(0, np.pi, (6, N))
    w = qml.numpy.array(rng.uniform(0, np.pi, (2, N, 3)), requires_grad=True)
    qml.grad(lambda w: qml.math.sum(circuit(x, w)))(w)
    # the call is spooled with the backend's amplitudes and the circuit's facts: nothing
    # left to simulate, no circuit to unpickle
    (spooled,) = recorder.spool.circuits(10)
    assert spooled.amplitudes.shape == (6, 2**N) and spooled.pickled_tape == b""
    assert spooled.facts.batch == 6
    recorder.flush(timeout=30)
    recorder.close()
    stats = recorder.stats()
    assert stats.delivered == 6 and stats.skipped == 0
    for row, expected in zip(x, reference(x, np.asarray(w))):
        (hit,) = store.query_similar(expected, top_k=1)
        assert hit.metadata["backend"] == "qstore.batched"
        np.testing.assert_allclose(json.loads(hit.metadata["parameters"])[:N], row, atol=1e-12)
        phase = np.vdot(hit.state, expected)
        np.testing.assert_allclose(hit.state * phase / abs(phase), expected, atol=1e-5)
    store.close()
