"""The compiled path of the Keras layers on the active Keras backend.

Runs in-process (TensorFlow) and, through tests/keras/test_keras_backends.py, under JAX
and torch: values and gradients must equal the QNode path's and default.qubit's.
"""

from __future__ import annotations

import keras
import numpy as np
import pennylane as qml
import pytest
from engine_failures import engine_without_memory

from keras_backends.backend_grad import layer_gradients
from qstore_pl.db import ResultCache, open_store
from qstore_pl.keras import KerasLayer, QuantumLayer
from qstore_pl.layers.compiled import CompiledPathWarning

N = 3
SHAPES = {"weights": (2, N, 3)}


def circuit(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N), rotation="X")
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    qml.RY(-2.0 * inputs[..., 2], wires=1)
    return [qml.expval(qml.Z(0)), qml.expval(qml.Y(1) @ qml.Z(2)), qml.probs(wires=[1, 2])]


def reupload(inputs, weights):
    """Data re-uploading: angles ``w * x + b`` and a product of two inputs."""
    for layer in range(2):
        for i in range(N):
            qml.RY(weights[layer, i, 0] * inputs[..., i] + weights[layer, i, 1], wires=i)
        qml.RX(inputs[..., 0] * inputs[..., 1] - 0.5 * weights[layer, 0, 2], wires=0)
        qml.CNOT([0, 1])
        qml.CNOT([1, 2])
        qml.RZ(weights[layer, 2, 2], wires=2)
    return [qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Z(2)), qml.probs(wires=[0, 2])]


def squared(inputs, weights):
    qml.RX(inputs[..., 0] ** 2, wires=0)
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(i)) for i in range(N)]


def make(fn, device, compiled=True):
    init = {"weights": {"initializer": keras.initializers.RandomUniform(0.0, 3.0, seed=3)}}
    qnode = qml.QNode(fn, device)
    layer = KerasLayer(qnode, SHAPES, weight_specs=init, compiled=compiled)
    layer.build((None, N))
    return layer


def run(layer, x, cotangent):
    y = np.asarray(keras.ops.convert_to_numpy(layer(x)), dtype=np.float64)
    return [y, *layer_gradients(layer, x, cotangent)]


def flat(result):
    value, gx, gw = result
    return [value, gx, *gw]


@pytest.mark.parametrize("fn", [circuit, reupload, squared])
def test_compiled_keras_layer_equals_the_qnode_path_and_default_qubit(fn):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, np.pi, (5, N)).astype("float32")
    router = qml.device("qstore.router", wires=N, precision="double")
    compiled = make(fn, router)
    layers = [compiled, make(fn, router, compiled=False)]
    layers.append(make(fn, qml.device("default.qubit", wires=N), compiled=False))
    cotangent = rng.normal(size=(5, compiled.output_dim)).astype("float32")
    if fn is squared:
        with pytest.warns(CompiledPathWarning, match="uses the value of"):
            results = [flat(run(layer, x, cotangent)) for layer in layers]
    else:
        results = [flat(run(layer, x, cotangent)) for layer in layers]
    for other in results[1:]:
        for got, want in zip(results[0], other):
            np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)
    path = compiled._host.last_path
    assert path == "compiled" if fn is not squared else path.startswith("qnode (")


@pytest.mark.keras_backend_agnostic
def test_quantum_layer_keeps_the_opt_out_in_its_config():
    layer = QuantumLayer(n_qubits=N, depth=1, compiled=False)
    assert layer.get_config()["compiled"] is False
    assert QuantumLayer.from_config(layer.get_config()).compiled is False
    assert QuantumLayer(n_qubits=N, depth=1).compiled is True


def pair(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N), rotation="X")
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(0)), qml.expval(qml.Y(1) @ qml.Z(2))]


def test_an_engine_failure_runs_the_batch_through_the_qnode_path(monkeypatch):
    engine_without_memory(monkeypatch)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, np.pi, (4, N)).astype("float32")
    router = qml.device(
        "qstore.router",
        wires=N,
        precision="double",
        router_config={"backends": ["qstore.batched", "default.qubit"]},
    )
    routed = make(pair, router)
    reference = make(pair, qml.device("default.qubit", wires=N), compiled=False)
    cotangent = rng.normal(size=(4, routed.output_dim)).astype("float32")
    with pytest.warns(CompiledPathWarning, match="qstore.batched failed on the compiled path"):
        got = flat(run(routed, x, cotangent))
    for a, b in zip(got, flat(run(reference, x, cotangent))):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
    assert routed._host.last_path.startswith("qnode (qstore.batched failed on the compiled path")
    failed = [f for r in router.routing_report().recent for f in r.failed]
    assert any(f.startswith("qstore.batched: compiled path (execute): MemoryError") for f in failed)


def test_inference_on_either_path_finds_what_the_other_stored_in_a_result_cache(tmp_path):
    with open_store(path=tmp_path / "db") as store:
        cache = ResultCache(store, simulators=True)
        router = qml.device(
            "qstore.router",
            wires=N,
            precision="double",
            callbacks=[cache],
            router_config={"backends": ["qstore.batched"]},
        )
        compiled, qnode_path = make(reupload, router), make(reupload, router, compiled=False)
        reference = make(reupload, qml.device("default.qubit", wires=N), compiled=False)
        rng = np.random.default_rng(2)
        x, y = (rng.uniform(0, np.pi, (4, N)).astype("float32") for _ in range(2))

        def predict(layer, data):
            model = keras.Sequential([keras.Input((N,)), layer])
            return model.predict(data, batch_size=4, verbose=0)

        results = [predict(qnode_path, x), predict(compiled, x)]
        assert cache.savings().hits == 1
        results += [predict(compiled, y), predict(qnode_path, y)]
        assert cache.savings().hits == 2
        assert compiled._host.last_path == "compiled"
        want = [predict(reference, data) for data in (x, x, y, y)]
        for got, expected in zip(results, want):
            np.testing.assert_allclose(got, expected, atol=2e-6, rtol=1e-5)


def test_a_keras_layer_with_shots_samples_on_the_compiled_path():
    """Outputs from 10^6 shots of the engine's states, gradients by the sampled
    parameter-shift rule: within a few standard errors (at most 0.001 per estimate)
    of default.qubit's exact values, and not equal to them."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, np.pi, (4, N)).astype("float32")
    router = qml.device("qstore.router", wires=N, precision="double", seed=2)
    init = {"weights": {"initializer": keras.initializers.RandomUniform(0.0, 3.0, seed=3)}}
    qnode = qml.set_shots(qml.QNode(reupload, router), shots=1_000_000)
    sampled = KerasLayer(qnode, SHAPES, weight_specs=init)
    sampled.build((None, N))
    exact = make(reupload, qml.device("default.qubit", wires=N), compiled=False)
    cotangent = rng.normal(size=(4, sampled.output_dim)).astype("float32")
    got, want = flat(run(sampled, x, cotangent)), flat(run(exact, x, cotangent))
    assert router.routing_report().recent[-1].derivative_method == "parameter-shift"
    assert not np.allclose(got[0], want[0], atol=1e-6, rtol=0)  # sampled, not exact
    for a, b, tol in zip(got, want, (0.012, 0.05, 0.05)):
        np.testing.assert_allclose(a, b, atol=tol, rtol=0)
