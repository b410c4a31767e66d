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


def shot_tolerance(shots: int) -> float:
    """The standard error of an expectation value from ``shots`` samples, at most."""
    return 1 / np.sqrt(shots)


@pytest.mark.parametrize(
    "backend, shots, path",
    # lightning draws every sample (time grows with shots); the engine draws counts
    [("qstore.batched", 1_000_000, "compiled"), ("lightning.qubit", 100_000, "tapes")],
)
def test_with_shots_values_and_derivatives_are_sampled_and_shifted(backend, shots, path):
    """With a QNode's shots the values are sampled, and ``grad``, ``jacrev`` and
    ``jacfwd`` follow the parameter-shift rule with every shifted circuit sampled, on
    the compiled path and on the tape path. Each row of the angle table is shifted
    across the whole batch at once, inputs included (PennyLane's own transform refuses
    broadcast inputs). Tolerances: about twice the largest error over 8 seeds."""
    dev = qml.device(
        "qstore.router",
        wires=N,
        precision="double",
        seed=3,
        router_config={"backends": [backend]},
    )
    f = circuit_function(qml.set_shots(qml.QNode(circuit, dev, interface="jax"), shots))
    x, weights = data()
    se = shot_tolerance(shots)

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w)) * jnp.arange(6.0))

    def gradient_circuits() -> tuple[str | None, int]:
        last = dev.routing_report().recent[-1]
        return last.derivative_method, last.circuits

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompiledPathWarning)
        values = jax.jit(f)(x, weights)
        grads = jax.jit(jax.grad(loss(f), argnums=(0, 1)))(x, weights)
        grads_ran = gradient_circuits()
        jac_w = jax.jit(jax.jacrev(f, argnums=1))(x, weights)
        jac_w_ran = gradient_circuits()
        jac_x = jax.jacfwd(f, argnums=0)(x, weights)
        jac_x_ran = gradient_circuits()
    assert (path == "tapes") == any("tape path" in str(w.message) for w in caught)
    assert router_path(dev, x, weights).startswith(path)
    want = reference(x, weights)
    assert np.abs(values - want).max() > 1e-7  # sampled, not exact
    np.testing.assert_allclose(values, want, atol=6 * se)
    assert_trees_close(grads, jax.grad(loss(reference), argnums=(0, 1))(x, weights), 12 * se)
    np.testing.assert_allclose(jac_w, jax.jacrev(reference, argnums=1)(x, weights), atol=6 * se)
    np.testing.assert_allclose(jac_x, jax.jacfwd(reference, argnums=0)(x, weights), atol=6 * se)
    # Only the shifted circuits run (the forward batch is not run, or paid for, again),
    # and only for the rows the derivative needs; 5 samples. The inputs' 3 rows and
    # the weights' 9 are rotations with two shifts each, the CRX (a weight's) has four.
    method = "parameter-shift" if path == "compiled" else None
    assert grads_ran == (method, 5 * (12 * 2 + 4))
    assert jac_w_ran == (method, 5 * (9 * 2 + 4))
    assert jac_x_ran == (method, 5 * 3 * 2)


def router_path(dev, x, weights) -> str:
    return dev.explain(qml.QNode(circuit, dev), x, weights).path


@pytest.mark.parametrize("backend", ["qstore.batched", "default.qubit"])
def test_estimates_spread_as_the_shots_say(backend):
    """4,000 estimates of <Z> from 100 shots each vary by (1 - <Z>^2) / 100: the
    samples are the QNode's shots, not more and not fewer, on either path."""

    def one_qubit(x):
        qml.RY(x, wires=0)
        return qml.expval(qml.Z(0))

    dev = qml.device("qstore.router", wires=1, seed=5, router_config={"backends": [backend]})
    f = circuit_function(qml.set_shots(qml.QNode(one_qubit, dev, interface="jax"), 100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompiledPathWarning)
        out = np.asarray(f(jnp.full(4000, 1.1)))[:, 0]
    z = np.cos(1.1)
    assert out.mean() == pytest.approx(z, abs=5 * np.sqrt((1 - z**2) / 100 / 4000))
    assert out.var() == pytest.approx((1 - z**2) / 100, rel=0.1)


def test_a_device_with_shots_samples_and_shifts_on_any_device():
    """A quantum function on a device with shots (PennyLane's older ``shots=`` on the
    device) is sampled too, and needs no device derivatives: the shifts are the path's
    own, so default.qubit will do."""
    with pytest.warns(qml.exceptions.PennyLaneDeprecationWarning, match="shots on device"):
        dev = qml.device("default.qubit", wires=N, shots=100_000, seed=11)
    f = circuit_function(circuit, dev)
    x, weights = data()
    se = shot_tolerance(100_000)

    def loss(fn, w):
        return jnp.sum(fn(x, w)[:, :2])

    values = f(x, weights)
    assert np.abs(values - reference(x, weights)).max() > 1e-7
    np.testing.assert_allclose(values, reference(x, weights), atol=6 * se)
    np.testing.assert_allclose(
        jax.grad(partial(loss, f))(weights),
        jax.grad(partial(loss, reference))(weights),
        atol=20 * se,
    )


def test_shots_the_shift_rule_cannot_serve_take_the_qnode_or_refuse():
    """A shot vector has one result per shot group, not one array: refused at once.
    ``diff_method='adjoint'`` with shots is the QNode's to refuse (PennyLane does),
    never answered with exact adjoint derivatives."""
    dev = qml.device("qstore.router", wires=N, seed=7)
    vector = qml.set_shots(qml.QNode(circuit, dev, interface="jax"), [100, 200])
    with pytest.raises(ValueError, match=r"shot vector.*one number of shots"):
        circuit_function(vector)
    adjoint = qml.set_shots(qml.QNode(circuit, dev, interface="jax", diff_method="adjoint"), 100)
    f = circuit_function(adjoint)
    x, weights = data()
    with pytest.warns(CompiledPathWarning, match="diff_method='adjoint' with shots"):
        with pytest.raises(qml.exceptions.QuantumFunctionError, match="adjoint"):
            jax.grad(lambda w: jnp.sum(f(x, w)))(weights)


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
