"""qstore_pl.keras.PQC and ControlledPQC on the active Keras backend (circuits as inputs)."""

from __future__ import annotations

import keras
import numpy as np
import pennylane as qml
import pytest

from keras_backends.backend_grad import layer_gradients
from qstore_pl.circuits import ParametrizedCircuit, encode_circuits
from qstore_pl.keras import PQC, ControlledPQC

OBSERVABLES = [qml.Z(1), qml.X(0) @ qml.Y(2)]


def model(w, v):
    qml.RY(w[0], 0)
    qml.CNOT([0, 1])
    qml.RX(w[1], 1)
    qml.IsingZZ(v, wires=[1, 2])
    qml.RY(2 * w[0], 2)


MODEL = ParametrizedCircuit.from_function(model, w=2, v=())


def data_circuits(n: int, seed: int = 0):
    """Circuits of three different structures with float32-exact angles."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 3, n).astype(np.float32).astype(np.float64)
    gates = [
        lambda a: [qml.RX(a, 0)],
        lambda a: [qml.Hadamard(2), qml.RY(a, 1)],
        lambda a: [qml.RZ(a, 0), qml.CNOT([0, 2]), qml.RX(a, 2)],
    ]
    return [qml.tape.QuantumScript(gates[i % 3](a)) for i, a in enumerate(angles)]


def reference(circuits, values_per_sample):
    dev = qml.device("default.qubit", wires=3)
    out = []
    for circuit, values in zip(circuits, values_per_sample, strict=True):
        tape = qml.tape.QuantumScript(
            circuit.operations + MODEL.bind(**values).operations,
            [qml.expval(o) for o in OBSERVABLES],
        )
        out.append(qml.execute([tape], dev)[0])
    return np.array(out, dtype=np.float64)


def test_pqc_values_and_weight_gradients_match_default_qubit():
    circuits = data_circuits(7)
    tensor = encode_circuits(circuits, max_ops=4).astype("float32")
    layer = PQC(MODEL, OBSERVABLES, initializer=keras.initializers.RandomUniform(0, 3, seed=1))
    w, v = [keras.ops.convert_to_numpy(x).astype(np.float64) for x in layer.trainable_variables]
    y = keras.ops.convert_to_numpy(layer(tensor))
    assert y.shape == (7, 2)
    np.testing.assert_allclose(y, reference(circuits, [{"w": w, "v": v}] * 7), atol=2e-6)

    cot = np.random.default_rng(2).normal(size=(7, 2)).astype("float32")
    gx, (gw, gv) = layer_gradients(layer, tensor, cot)
    assert not np.any(gx)  # data circuits get no gradient, as in TFQ

    def loss(w, v):
        return float(np.sum(cot * reference(circuits, [{"w": w, "v": v}] * 7)))

    eps = 1e-6
    fd_w = [(loss(w + d, v) - loss(w - d, v)) / (2 * eps) for d in np.eye(2) * eps]
    fd_v = (loss(w, v + eps) - loss(w, v - eps)) / (2 * eps)
    np.testing.assert_allclose(gw, fd_w, atol=1e-4)
    np.testing.assert_allclose(gv, fd_v, atol=1e-4)


def test_controlled_pqc_takes_per_sample_symbol_values_and_differentiates_them():
    circuits = data_circuits(5, seed=3)
    tensor = encode_circuits(circuits, max_ops=4).astype("float32")
    values = np.random.default_rng(4).uniform(0, 2, (5, 3)).astype(np.float32)
    layer = ControlledPQC(MODEL, OBSERVABLES)
    per_sample = [{"w": row[:2].astype(np.float64), "v": float(row[2])} for row in values]
    y = keras.ops.convert_to_numpy(layer([tensor, values]))
    np.testing.assert_allclose(y, reference(circuits, per_sample), atol=2e-6)

    # gradient w.r.t. the values through a model whose only input is the value tensor
    cot = np.ones((5, 2), dtype="float32")
    wrapper = keras.layers.Lambda(lambda vals: layer([keras.ops.convert_to_tensor(tensor), vals]))
    gv, _ = layer_gradients(wrapper, values, cot)
    eps = 1e-6
    fd = np.zeros((5, 3))
    for i in range(5):
        for j in range(3):
            up, down = values.astype(np.float64), values.astype(np.float64)
            up[i, j] += eps
            down[i, j] -= eps

            def f(vals, i=i):
                row = {"w": vals[i, :2], "v": float(vals[i, 2])}
                return float(np.sum(reference([circuits[i]], [row])))

            fd[i, j] = (f(up) - f(down)) / (2 * eps)
    np.testing.assert_allclose(gv, fd, atol=1e-4)

    with pytest.raises(ValueError, match="2 columns; expected 3"):
        keras.ops.convert_to_numpy(layer([tensor, values[:, :2]]))


def test_pqc_model_learns_labels_of_circuits_and_survives_save_load(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(5)
    angles = rng.uniform(-np.pi, np.pi, 40)
    circuits = [qml.tape.QuantumScript([qml.RX(a, 0)]) for a in angles]
    labels = (np.abs(angles) < np.pi / 2).astype("float32")
    tensor = encode_circuits(circuits, max_ops=1).astype("float32")
    readout = ParametrizedCircuit.from_function(lambda w: qml.RY(w[0], 0), w=1)
    inputs = keras.Input(tensor.shape[1:])
    outputs = keras.layers.Dense(1)(PQC(readout, [qml.Z(0)], initializer="zeros")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True)
    )
    losses = model.fit(tensor, labels, epochs=8, batch_size=10, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    model.save(tmp_path / "pqc.keras")
    loaded = keras.models.load_model(tmp_path / "pqc.keras")
    np.testing.assert_allclose(
        loaded.predict(tensor, verbose=0), model.predict(tensor, verbose=0), atol=1e-6
    )


@pytest.mark.keras_backend_agnostic
def test_model_circuit_must_be_parametrized():
    with pytest.raises(TypeError, match=r"ParametrizedCircuit\.from_function"):
        PQC(model, OBSERVABLES)
    with pytest.raises(ValueError, match="at least one observable"):
        PQC(MODEL, [])
