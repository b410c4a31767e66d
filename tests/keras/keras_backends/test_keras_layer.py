"""qstore_pl.keras.KerasLayer on the active Keras backend.

The suite runs this file in-process (TensorFlow, Keras's default) and, through
tests/keras/test_keras_backends.py, again in subprocesses with KERAS_BACKEND=jax and torch.
Values are compared with default.qubit, gradients with central finite differences.
"""

from __future__ import annotations

import keras
import numpy as np
import pennylane as qml
import pytest

from keras_backends.backend_grad import layer_gradients
from qstore_pl.keras import KerasLayer

N = 3
BACKEND = keras.backend.backend()
# the layer computes in float64 on the host and returns the compute dtype
F32 = {"atol": 2e-6, "rtol": 1e-5}


def circuit(inputs, weights, scale):
    qml.AngleEmbedding(inputs, wires=range(N), rotation="Y")
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    qml.RX(scale[0] * inputs[..., 0], wires=0)  # inputs re-enter, scaled by a weight
    return [qml.expval(qml.Z(i)) for i in range(N)] + [qml.expval(qml.X(0) @ qml.X(2))]


@keras.saving.register_keras_serializable(package="qstore_tests")
def registered_circuit(inputs, weights, scale):
    return circuit(inputs, weights, scale)


SHAPES = {"weights": (2, N, 3), "scale": (1,)}
REFERENCE = qml.QNode(circuit, qml.device("default.qubit", wires=N))


def router_layer(**kwargs) -> KerasLayer:
    qnode = qml.QNode(registered_circuit, qml.device("qstore.router", wires=N))
    specs = {
        "weights": {"initializer": keras.initializers.RandomUniform(0.0, 3.0, seed=3)},
        "scale": {"initializer": keras.initializers.Constant(0.7)},
    }
    return KerasLayer(qnode, SHAPES, weight_specs=specs, **kwargs)


def broadcast_reference(x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """default.qubit's outputs for a batch of inputs, as one broadcast call."""
    return np.stack(REFERENCE(np.asarray(x, dtype=np.float64), *weights), axis=-1)


def reference(x: np.ndarray, layer: KerasLayer) -> np.ndarray:
    w = [keras.ops.convert_to_numpy(v).astype(np.float64) for v in layer.trainable_variables]
    return broadcast_reference(x, w)


def finite_difference(f, array: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        shift = np.zeros_like(array)
        shift[i] = eps
        grad[i] = (f(array + shift) - f(array - shift)) / (2 * eps)
    return grad


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return rng.uniform(0, np.pi, (5, N)).astype("float32")


@pytest.mark.parametrize("batch", [1, 5, 11])
def test_values_match_default_qubit_for_any_batch_size(batch):
    layer = router_layer()
    x = np.random.default_rng(batch).uniform(0, np.pi, (batch, N)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (batch, N + 1) and y.dtype == np.float32
    np.testing.assert_allclose(y, reference(x, layer), **F32)


@pytest.mark.keras_backend_agnostic
def test_output_dim_is_read_from_the_circuit_and_checked():
    layer = router_layer()
    assert layer.compute_output_shape((None, N)) == (None, N + 1)
    with pytest.raises(ValueError, match="output_dim=2 but the circuit returns 4"):
        router_layer(output_dim=2).build((None, N))


def test_gradients_for_inputs_and_weights_match_finite_differences(data):
    layer = router_layer()
    layer.build((None, N))
    cot = np.random.default_rng(1).normal(size=(len(data), N + 1)).astype("float32")
    gx, gw = layer_gradients(layer, data, cot)
    w = [keras.ops.convert_to_numpy(v).astype(np.float64) for v in layer.trainable_variables]
    x64 = data.astype(np.float64)

    def loss(x, ws):
        return float(np.sum(cot * broadcast_reference(x, ws)))

    np.testing.assert_allclose(gx, finite_difference(lambda x: loss(x, w), x64), atol=1e-4)
    for k in range(len(w)):

        def loss_k(wk, k=k):
            return loss(x64, [wk if j == k else w[j] for j in range(len(w))])

        np.testing.assert_allclose(gw[k], finite_difference(loss_k, w[k]), atol=1e-4)


def test_input_gradients_off_gives_zero_input_gradient_and_same_weight_gradients(data):
    on, off = router_layer(), router_layer(input_gradients=False)
    cot = np.ones((len(data), N + 1), dtype="float32")
    gx_on, gw_on = layer_gradients(on, data, cot)
    gx_off, gw_off = layer_gradients(off, data, cot)
    assert np.abs(gx_on).max() > 1e-3 and not np.any(gx_off)
    for a, b in zip(gw_on, gw_off, strict=True):
        np.testing.assert_allclose(a, b, **F32)


def fit_threshold(model: keras.Model, samples: int = 48, **compile_kwargs) -> list[float]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, np.pi, (samples, N)).astype("float32")
    y = (x[:, 0] < np.pi / 2).astype("int32")
    model.compile(
        optimizer=keras.optimizers.Adam(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **compile_kwargs,
    )
    batches = []
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    history = model.fit(x, y, epochs=6, batch_size=20, verbose=0, callbacks=[callback])
    assert len(batches) == 6 * -(-samples // 20)  # 20 + 20 + 8: a smaller last batch runs too
    return history.history["loss"]


def test_sequential_model_with_classical_layers_on_both_sides_learns():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((N,)), keras.layers.Dense(N), router_layer(), keras.layers.Dense(2)]
    )
    losses = fit_threshold(model)
    assert losses[-1] < 0.8 * losses[0]
    # the Dense layer before the circuit trained too: input gradients reached it
    assert np.abs(keras.ops.convert_to_numpy(model.layers[0].kernel)).sum() > 0


@pytest.mark.keras_backend_agnostic
def test_functional_model_learns():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((N,))
    quantum = router_layer()(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()([quantum, inputs]))
    losses = fit_threshold(keras.Model(inputs, outputs))
    assert losses[-1] < 0.8 * losses[0]


def test_jit_compile_where_the_backend_allows_it():
    keras.utils.set_random_seed(2)
    layer = router_layer()
    assert layer.supports_jit == (BACKEND != "tensorflow")
    model = keras.Sequential([keras.Input((N,)), layer, keras.layers.Dense(2)])
    # "auto" compiles with XLA / jax.jit where every layer supports it
    losses = fit_threshold(model, jit_compile="auto")
    assert losses[-1] < losses[0]
    if BACKEND == "torch":  # jit_compile=True means torch.compile around the host call
        layer = router_layer()
        model = keras.Sequential([keras.Input((N,)), layer, keras.layers.Dense(2)])
        # batches of one size: torch.compile compiles the step once, not again for the
        # smaller last batch (this test took 15 s instead of 22)
        losses = fit_threshold(model, samples=40, jit_compile=True)
        assert losses[-1] < losses[0]
        report = layer.qnode.device.routing_report()
        assert all(t.failures == 0 for t in report.totals.values()), str(report)
    if BACKEND == "jax":
        cot = np.ones((4, N + 1), dtype="float32")
        x = np.full((4, N), 0.3, dtype="float32")
        jitted = layer_gradients(layer, x, cot, jit=True)
        eager = layer_gradients(layer, x, cot)
        np.testing.assert_allclose(jitted[0], eager[0], **F32)


def test_inputs_with_extra_axes_keep_them():
    layer = router_layer()
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, N)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 3, N + 1)
    np.testing.assert_allclose(y.reshape(6, -1), reference(x.reshape(6, N), layer), **F32)


def test_save_and_load_round_trip(tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((N,)), router_layer(), keras.layers.Dense(2)])
    x = np.random.default_rng(4).uniform(0, 1, (6, N)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.zeros((6, 2)), epochs=1, verbose=0)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    layer = loaded.layers[0]
    assert isinstance(layer, KerasLayer) and layer.qnode.device.name == "qstore.router"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, **F32)
    loaded.fit(x, np.zeros((6, 2)), epochs=1, verbose=0)  # and it trains on


@pytest.mark.keras_backend_agnostic
def test_unregistered_circuit_cannot_be_saved_and_says_how_to_fix(tmp_path):
    qnode = qml.QNode(circuit, qml.device("qstore.router", wires=N))
    model = keras.Sequential([keras.Input((N,)), KerasLayer(qnode, SHAPES)])
    with pytest.raises(ValueError, match="register_keras_serializable"):
        model.save(tmp_path / "m.keras")


@pytest.mark.keras_backend_agnostic
def test_bad_arguments_are_named():
    qnode = qml.QNode(circuit, qml.device("qstore.router", wires=N))
    with pytest.raises(ValueError, match=r"\['bias'\], which the QNode's function does not"):
        KerasLayer(qnode, {**SHAPES, "bias": 2})
    with pytest.raises(ValueError, match=r"\['scale'\] have no default"):
        KerasLayer(qnode, {"weights": (2, N, 3)})
    with pytest.raises(ValueError, match="allowed keys"):
        KerasLayer(qnode, SHAPES, weight_specs={"weights": {"init": "zeros"}})

    @qml.qnode(qml.device("qstore.router", wires=1))
    def no_inputs(x, w):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    with pytest.raises(TypeError, match="no 'inputs' argument"):
        KerasLayer(no_inputs, {"w": 1})

    @qml.qnode(qml.device("qstore.router", wires=1))
    def returns_state(inputs):
        qml.RX(inputs[..., 0], 0)
        return qml.state()

    with pytest.raises(ValueError, match="returns StateMP"):
        KerasLayer(returns_state, {}).build((None, 1))


def test_nan_inputs_raise_instead_of_training_on_garbage():
    layer = router_layer()
    x = np.full((2, N), np.nan, dtype="float32")
    with pytest.raises(Exception, match=r"(?i)nan"):
        keras.ops.convert_to_numpy(layer(x))
