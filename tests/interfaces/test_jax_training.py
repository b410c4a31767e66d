"""A JAX model trained with optax under jax.jit through qstore.router."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

jax.config.update("jax_enable_x64", True)
N = 3


def circuit(x, weights):
    qml.AngleEmbedding(x, wires=range(N))
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return qml.expval(qml.Z(0))


def make_loss(device_name: str):
    qnode = qml.QNode(circuit, qml.device(device_name, wires=N), interface="jax")

    def loss(params, x, y):
        logits = qnode(x, params["weights"]) * params["scale"] + params["bias"]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))

    return loss


def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, np.pi, (24, N))
    return jnp.asarray(x), jnp.asarray((x[:, 0] < np.pi / 2).astype(float))


def init_params():
    rng = np.random.default_rng(1)
    weights = jnp.asarray(rng.uniform(0, 2 * np.pi, (2, N, 3)))
    return {"weights": weights, "scale": jnp.asarray(1.0), "bias": jnp.asarray(0.0)}


def test_jitted_gradient_equals_default_qubit_backprop():
    x, y = data()
    params = init_params()
    routed = jax.jit(jax.value_and_grad(make_loss("qstore.router")))(params, x, y)
    reference = jax.value_and_grad(make_loss("default.qubit"))(params, x, y)
    np.testing.assert_allclose(routed[0], reference[0], atol=1e-10)
    for key in params:
        np.testing.assert_allclose(routed[1][key], reference[1][key], atol=1e-9)


def test_optax_training_under_jit_lowers_the_loss():
    x, y = data()
    loss = make_loss("qstore.router")
    optimiser = optax.adam(0.1)
    params = init_params()
    state = optimiser.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    losses = []
    for _ in range(15):
        params, state, value = step(params, state)
        losses.append(float(value))
    assert losses[-1] < 0.7 * losses[0]


def test_jitted_gradient_with_a_constant_broadcast_input_runs_without_fallbacks():
    """Under jax.jit PennyLane differentiates through Jacobians: the router must split a
    broadcast tape even when the broadcast input is not trained."""
    dev = qml.device("qstore.router", wires=2)

    def circuit(x, w):
        qml.RY(x, wires=0)
        qml.RX(w, wires=0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    x = np.linspace(0, 1, 5)
    routed = qml.QNode(circuit, dev, interface="jax")
    reference = qml.QNode(circuit, qml.device("default.qubit"), interface="jax")
    grad = jax.jit(jax.grad(lambda w: routed(x, w).sum()))(0.3)
    expected = jax.grad(lambda w: reference(x, w).sum())(0.3)
    np.testing.assert_allclose(grad, expected, atol=1e-10)
    report = dev.routing_report()
    assert all(t.failures == 0 for t in report.totals.values()), str(report)
    assert "qstore.qsim" not in report.totals  # no parameter-shift fallback
