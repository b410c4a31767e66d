"""qstore_pl.keras.QuantumLayer on the active Keras backend (see test_keras_layer.py)."""

from __future__ import annotations

import keras
import numpy as np
import pennylane as qml
import pytest

from keras_backends.backend_grad import layer_gradients
from qstore_pl.keras import QuantumLayer

F32 = {"atol": 2e-6, "rtol": 1e-5}


def reference(layer: QuantumLayer, x: np.ndarray) -> np.ndarray:
    """The same circuit on default.qubit, sample by sample, in float64."""
    qnode = qml.QNode(layer.circuit.qfunc(), qml.device("default.qubit"))
    (w,) = [keras.ops.convert_to_numpy(v).astype(np.float64) for v in layer.trainable_variables]
    return np.stack([np.hstack(qnode(xi, w)) for xi in x.astype(np.float64)])


@pytest.mark.parametrize(
    "options, n_features",
    [
        ({"encoding": "angle", "entanglement": "ring"}, 3),
        ({"encoding": "amplitude", "measurement": "probs"}, 7),  # padded to 8
        # circuit options only: the other backends run the two shapes above
        pytest.param(
            {"ansatz": "reuploading", "measurement": ("ZZI", "IXX")},
            3,
            marks=pytest.mark.keras_backend_agnostic,
        ),
        pytest.param(
            {"ansatz": "strongly_entangling", "measurement": "x"},
            2,
            marks=pytest.mark.keras_backend_agnostic,
        ),
    ],
)
def test_values_match_default_qubit(options, n_features):
    layer = QuantumLayer(n_qubits=3, depth=2, **options)
    x = np.random.default_rng(0).uniform(0.1, 2.0, (4, n_features)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (4, layer.circuit.output_dim)
    np.testing.assert_allclose(y, reference(layer, x), **F32)


def test_amplitude_encoded_gradients_match_finite_differences():
    layer = QuantumLayer(n_qubits=2, depth=1, encoding="amplitude")
    x = np.random.default_rng(1).uniform(0.2, 1.0, (3, 4)).astype("float32")
    cot = np.random.default_rng(2).normal(size=(3, 2)).astype("float32")
    gx, (gw,) = layer_gradients(layer, x, cot)
    w = keras.ops.convert_to_numpy(layer.trainable_variables[0]).astype(np.float64)
    qnode = qml.QNode(layer.circuit.qfunc(), qml.device("default.qubit"))

    def loss(xs, ws):
        return float(np.sum(cot * np.stack([np.hstack(qnode(xi, ws)) for xi in xs])))

    eps = 1e-6
    fd_x = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        d = np.zeros(x.shape)
        d[i] = eps
        fd_x[i] = (loss(x + d, w) - loss(x - d, w)) / (2 * eps)
    fd_w = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        d = np.zeros(w.shape)
        d[i] = eps
        fd_w[i] = (loss(x, w + d) - loss(x, w - d)) / (2 * eps)
    np.testing.assert_allclose(gx, fd_x, atol=1e-4)
    np.testing.assert_allclose(gw, fd_w, atol=1e-4)


def test_trains_and_saves_without_registering_anything(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, np.pi, (40, 2)).astype("float32")
    y = (x[:, 0] > np.pi / 2).astype("int32")
    model = keras.Sequential(
        [keras.Input((2,)), QuantumLayer(2, 2, entanglement="ring"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    losses = model.fit(x, y, epochs=6, batch_size=10, verbose=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    model.save(tmp_path / "q.keras")
    loaded = keras.models.load_model(tmp_path / "q.keras")
    assert loaded.layers[0].circuit == model.layers[0].circuit
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), **F32)


@pytest.mark.keras_backend_agnostic
def test_bad_configs_name_the_problem():
    with pytest.raises(ValueError, match="encoding must be one of"):
        QuantumLayer(2, 1, encoding="basis")
    with pytest.raises(ValueError, match="use encoding='angle'"):
        QuantumLayer(2, 1, encoding="amplitude", ansatz="reuploading")
    with pytest.raises(ValueError, match="2 letters from IXYZ"):
        QuantumLayer(2, 1, measurement=("ZZZ",))
    with pytest.raises(ValueError, match="the layer needs 3"):
        QuantumLayer(3, 1, device=qml.device("qstore.router", wires=2))
    layer = QuantumLayer(2, 1)
    with pytest.raises(ValueError, match="3 features do not fit angle encoding on 2 qubits"):
        layer(np.zeros((1, 3), dtype="float32"))
