"""qstore_pl.jax.circuit_function against default.qubit on PennyLane's JAX interface.

Values and first derivatives (grad, jacrev, jacfwd, under jit and vmap) must equal
default.qubit's; the batch must reach the router as one call; second derivatives
must refuse instead of returning zeros.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from qstore_pl.callbacks import DeviceCallback
from qstore_pl.jax import circuit_function
from qstore_pl.layers.compiled import CompiledPathWarning

jax.config.update("jax_enable_x64", True)
N = 3


def circuit(x, weights):
    qml.AngleEmbedding(x, wires=range(N))
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    qml.CRX(weights[0, 0, 0] * 0.5, wires=[0, 2])  # classical processing of a weight
    return [qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Z(2)), qml.probs(wires=[1, 2])]


@jax.jit
def reference(x, weights):
    qnode = qml.QNode(circuit, qml.device("default.qubit"), interface="jax")
    expval_z, expval_xz, probs = qnode(x, weights)
    return jnp.concatenate([expval_z[..., None], expval_xz[..., None], probs], axis=-1)


def routed_runs(tracker: qml.Tracker) -> int:
    """Runs the router made (a forward batch, a VJP batch), on either path."""
    return len(tracker.history.get("backend", []))


def data(batch=5):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0, np.pi, (batch, N)))
    weights = jnp.asarray(rng.uniform(0, 2 * np.pi, (1, N, 3)))
    return x, weights


def make_router(backend: str = "qstore.batched"):
    return qml.device(
        "qstore.router", wires=N, precision="double", router_config={"backends": [backend]}
    )


@pytest.fixture
def router():
    return make_router()


def assert_trees_close(actual, expected, atol):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, e, atol=atol)


def test_values_of_a_batch_equal_default_qubit_under_jit(router):
    f = circuit_function(circuit, router)
    x, weights = data()
    expected = reference(x, weights)
    assert f(x, weights).shape == (5, 6)
    np.testing.assert_allclose(jax.jit(f)(x, weights), expected, atol=1e-12)
    np.testing.assert_allclose(f(x[0], weights), expected[0], atol=1e-12)  # no batch axis


@pytest.mark.parametrize("transform", [jax.jacrev, jax.jacfwd])
def test_jacobians_equal_default_qubit(router, transform):
    f = circuit_function(circuit, router)
    x, weights = data()
    actual = jax.jit(transform(f, argnums=(0, 1)))(x, weights)
    expected = transform(reference, argnums=(0, 1))(x, weights)
    assert_trees_close(actual, expected, atol=1e-10)


def test_grad_of_a_loss_runs_the_batch_once_on_the_router(router):
    f = circuit_function(circuit, router)
    x, weights = data()

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w)) * jnp.arange(6.0))

    with qml.Tracker(router) as tracker:
        value, grads = jax.jit(jax.value_and_grad(loss(f), argnums=(0, 1)))(x, weights)
    expected = jax.value_and_grad(loss(reference), argnums=(0, 1))(x, weights)
    assert_trees_close((value, grads), expected, atol=1e-10)
    # the forward pass and one VJP with the loss's cotangent, each the batch of 5 in
    # one run on the compiled path (no Jacobian: that would be 6 adjoint states each)
    assert routed_runs(tracker) == 2
    assert tracker.totals["executions:qstore.batched"] == 10
    assert router.explain(qml.QNode(circuit, router), x, weights).path == "compiled"


def test_vmap_of_a_one_sample_function_is_one_call(router):
    f = circuit_function(circuit, router)
    x, weights = data()
    per_sample = jax.vmap(f, in_axes=(0, None))
    with qml.Tracker(router) as tracker:
        values = jax.jit(per_sample)(x, weights)
    np.testing.assert_allclose(values, reference(x, weights), atol=1e-12)
    assert routed_runs(tracker) == 1

    def loss(fn):
        return lambda w: jnp.sum(jax.vmap(fn, in_axes=(0, None))(x, w) ** 2)

    with qml.Tracker(router) as tracker:
        grads = jax.jit(jax.grad(loss(f)))(weights)
    np.testing.assert_allclose(grads, jax.grad(loss(reference))(weights), atol=1e-10)
    assert routed_runs(tracker) == 2  # forward and VJP, each of the whole batch


def test_vmap_over_weights_runs_every_copy(router):
    f = circuit_function(circuit, router)
    x, weights = data(batch=2)
    stacked = jnp.stack([weights, weights * 0.5, weights + 1.0])
    actual = jax.vmap(f, in_axes=(None, 0))(x, stacked)
    for copy in range(3):
        np.testing.assert_allclose(actual[copy], reference(x, stacked[copy]), atol=1e-12)


def test_vmap_of_grad_over_weight_copies_folds_them_into_one_batch(router):
    f = circuit_function(circuit, router)
    x, weights = data(batch=2)
    stacked = jnp.stack([weights, weights * 0.5, weights + 1.0])

    def loss(fn):
        return lambda w: jnp.sum(jnp.cos(fn(x, w)) * jnp.arange(6.0))

    with qml.Tracker(router) as tracker:
        actual = jax.jit(jax.vmap(jax.grad(loss(f))))(stacked)
    for copy in range(3):
        expected = jax.grad(loss(reference))(stacked[copy])
        np.testing.assert_allclose(actual[copy], expected, atol=1e-10)
    # 3 copies of 2 samples: one forward and one VJP of 6 circuits
    assert routed_runs(tracker) == 2
    assert tracker.totals["executions:qstore.batched"] == 12


def expvals(x, weights):
    """:func:`circuit` without its probabilities (adjoint on lightning refuses them)."""
    qml.AngleEmbedding(x, wires=range(N))
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    qml.CRX(weights[0, 0, 0] * 0.5, wires=[0, 2])
    return [qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Z(2))]


def test_a_tapes_only_backend_takes_the_tape_path_with_the_same_derivatives():
    router = make_router("lightning.qubit")
    f = circuit_function(expvals, router)
    x, weights = data()

    def first_two(x, w):
        return reference(x, w)[..., :2]

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w)) * jnp.arange(2.0))

    step = jax.jit(jax.value_and_grad(loss(f), argnums=(0, 1)))
    with pytest.warns(CompiledPathWarning, match="tape path.*'lightning.qubit'"):
        actual = jax.block_until_ready(step(x, weights))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledPathWarning)  # said once per reason
        jax.block_until_ready(step(x * 0.5, weights))
    expected = jax.value_and_grad(loss(first_two), argnums=(0, 1))(x, weights)
    assert_trees_close(actual, expected, atol=1e-10)
    path = router.explain(qml.QNode(expvals, router), x, weights).path
    assert path.startswith("tapes (the router chose 'lightning.qubit'")
    np.testing.assert_allclose(
        jax.jit(jax.jacrev(f, argnums=1))(x, weights),
        jax.jacrev(first_two, argnums=1)(x, weights),
        atol=1e-10,
    )


def test_second_derivatives_refuse_and_name_the_alternative(router):
    f = circuit_function(circuit, router)
    x, weights = data()
    with pytest.raises(NotImplementedError, match="diff_method='backprop'"):
        jax.hessian(lambda w: jnp.sum(f(x, w)))(weights)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        jax.jacfwd(jax.jacrev(lambda w: jnp.sum(f(x, w))))(weights)


def test_float32_without_x64():
    jax.config.update("jax_enable_x64", False)
    try:
        f = circuit_function(circuit, qml.device("qstore.router", wires=N))
        x, weights = (jnp.asarray(a, dtype=jnp.float32) for a in data())
        value, grad = jax.jit(jax.value_and_grad(lambda w: jnp.sum(f(x, w) ** 2)))(weights)
        assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
    x64, w64 = data()
    expected = jax.value_and_grad(lambda w: jnp.sum(reference(x64, w) ** 2))(w64)
    np.testing.assert_allclose(value, expected[0], rtol=1e-5)
    np.testing.assert_allclose(grad, expected[1], atol=1e-5)


def test_a_qnode_brings_its_device(router):
    qnode = qml.QNode(circuit, router)
    x, weights = data()
    np.testing.assert_allclose(
        circuit_function(qnode)(x, weights), reference(x, weights), atol=1e-12
    )
    with pytest.raises(ValueError, match="give the device"):
        circuit_function(circuit)


def test_a_qnode_with_shots_runs_through_itself_and_says_so_once():
    """With shots the angle table's exact values would be wrong: the calls go through
    the QNode (sampled values, parameter-shift derivatives), laid out as the table's,
    under ``jit`` too, and the first call warns. 20,000 shots: a standard error of at
    most 0.0071 per expectation value and 0.0036 per probability."""
    dev = qml.device("qstore.router", wires=N, precision="double", seed=7)
    f = circuit_function(qml.set_shots(qml.QNode(circuit, dev, interface="jax"), 20_000))
    x, weights = data()
    with pytest.warns(CompiledPathWarning, match="shots=20000"):
        values = f(x, weights)
    assert values.shape == (5, 6)
    np.testing.assert_allclose(values, reference(x, weights), atol=0.04)
    assert np.abs(values - reference(x, weights)).max() > 1e-6  # sampled, not exact

    def loss(fn, w):
        return jnp.mean(fn(x, w)[:, 0])

    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledPathWarning)  # said once
        grad = jax.jit(jax.grad(partial(loss, f)))(weights)
        single = f(x[0], weights)
    assert single.shape == (6,)
    np.testing.assert_allclose(single, reference(x, weights)[0], atol=0.04)
    np.testing.assert_allclose(grad, jax.grad(partial(loss, reference))(weights), atol=0.03)


def test_a_qnode_with_transforms_runs_through_itself(router):
    """The angle table would skip a QNode's transforms: its calls take the QNode."""
    qnode = qml.transforms.cancel_inverses(qml.QNode(circuit, router, interface="jax"))
    x, weights = data()
    with pytest.warns(CompiledPathWarning, match="transforms"):
        values = circuit_function(qnode)(x, weights)
    np.testing.assert_allclose(values, reference(x, weights), atol=1e-12)


def test_a_device_without_vector_jacobian_products_is_named():
    f = circuit_function(circuit, qml.device("default.qubit"))
    x, weights = data()
    with pytest.raises(TypeError, match="does not compute vector-Jacobian products"):
        f(x, weights)


def test_a_trainable_observable_is_refused(router):
    def weighted(x, w):
        qml.RX(x, wires=0)
        return qml.expval(w * qml.Z(0))

    with pytest.raises(TypeError, match="trainable observables"):
        jax.grad(lambda w: circuit_function(weighted, router)(0.3, w))(2.0)


def test_router_callbacks_see_the_batch_as_one_circuit(router):
    class Seen(DeviceCallback):
        def __init__(self):
            self.records: list = []

        def on_execution(self, record):
            self.records.append(record)

    seen = Seen()
    router.add_callback(seen)
    x, weights = data()
    jax.jit(circuit_function(circuit, router))(x, weights)
    assert [(r.task, r.tape.batch_size) for r in seen.records] == [("execute", 5)]


def test_a_circuit_without_angles_and_a_constant_unitary(router):
    def constant(x):
        qml.Hadamard(0)
        qml.CNOT([0, 1])
        return qml.probs(wires=[0, 1])

    np.testing.assert_allclose(circuit_function(constant, router)(1.0), [0.5, 0, 0, 0.5])

    def flipped(x):
        qml.QubitUnitary(np.array([[0.0, 1.0], [1.0, 0.0]]), wires=0)
        qml.RX(x, wires=0)
        return qml.expval(qml.Z(0))

    f = circuit_function(flipped, router)
    np.testing.assert_allclose(f(jnp.array([0.1, 0.2]))[:, 0], -np.cos([0.1, 0.2]), atol=1e-12)
    np.testing.assert_allclose(jax.grad(lambda x: f(x)[0])(0.3), np.sin(0.3), atol=1e-12)


def test_a_gate_without_decomposition_names_the_alternative(router):
    class TwoAngles(qml.operation.Operation):
        num_wires = 1
        num_params = 2

    def circuit(x):
        TwoAngles(x, x, wires=0)
        return qml.expval(qml.Z(0))

    with pytest.raises(TypeError, match="interface='jax'"):
        circuit_function(circuit, router)(0.2)
