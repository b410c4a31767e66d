"""``jax.vmap`` of a plain QNode on qstore.router, outside ``jax.jit``.

PennyLane's eager JAX boundary cannot hand a vmap's tracers to any device that
computes its own derivatives; default.qubit backpropagates and maps fine. The router
must give default.qubit's values and derivatives here, with every derivative method,
and run the mapped forward pass as one call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

jax.config.update("jax_enable_x64", True)


def make(device, diff_method):
    @qml.qnode(device, interface="jax", diff_method=diff_method)
    def circuit(x, w):
        qml.RX(x, 0)
        qml.RY(w[0], 1)
        qml.CNOT([0, 1])
        qml.RZ(w[1] * x, 1)
        qml.RX(w[1], 1)
        return qml.expval(qml.Z(1)), qml.probs(wires=0)

    return circuit


XS = jnp.linspace(0.1, 1.3, 6)
W = jnp.array([0.3, -0.7])
REFERENCE = make(qml.device("default.qubit", wires=2), "backprop")


def expval(circuit):
    return lambda x, w: circuit(x, w)[0]


@pytest.mark.parametrize("diff_method", ["best", "adjoint", "parameter-shift"])
def test_eager_vmap_gives_default_qubits_values_and_jacobians(diff_method):
    circuit = make(qml.device("qstore.router", wires=2, precision="double"), diff_method)
    for ours, theirs in zip(
        jax.vmap(circuit, in_axes=(0, None))(XS, W),
        jax.vmap(REFERENCE, in_axes=(0, None))(XS, W),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs, atol=1e-10)
    per_sample = jax.vmap(jax.jacobian(expval(circuit), argnums=(0, 1)), in_axes=(0, None))
    expected = jax.vmap(jax.jacobian(expval(REFERENCE), argnums=(0, 1)), in_axes=(0, None))
    for ours, theirs in zip(per_sample(XS, W), expected(XS, W), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-8)
    # differentiating the mapped function: the batch tracer sits under the JVP tracer
    mapped = jax.jacobian(jax.vmap(expval(circuit), in_axes=(0, None)), argnums=1)
    reference = jax.jacobian(jax.vmap(expval(REFERENCE), in_axes=(0, None)), argnums=1)
    np.testing.assert_allclose(mapped(XS, W), reference(XS, W), atol=1e-8)


def test_eager_vmap_forward_is_one_router_call():
    device = qml.device("qstore.router", wires=2)
    circuit = make(device, "best")
    with qml.Tracker(device) as tracker:
        values = jax.vmap(expval(circuit), in_axes=(0, None))(XS, W)
    assert tracker.totals["batches"] == 1
    np.testing.assert_allclose(
        values, jax.vmap(expval(REFERENCE), in_axes=(0, None))(XS, W), atol=1e-6
    )
