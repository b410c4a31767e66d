"""Values and Jacobians of a noisy circuit in each ML interface, shared by the noise
tests that compare a backend with default.mixed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

#: Gate angles and the trainable channel strength the noisy circuits take.
X0 = np.array([0.3, -0.7, 0.5])
P0 = 0.1


def values_and_jacobian(circuit: Callable, device, diff_method: str, interface: str) -> np.ndarray:
    """Flattened results of ``circuit(x, p)`` at ``(X0, P0)`` and their Jacobian with
    respect to the gate angles ``x`` and the channel strength ``p``."""
    qnode = qml.QNode(circuit, device, diff_method=diff_method, interface=interface)
    if interface == "autograd":
        x, p = pnp.array(X0, requires_grad=True), pnp.array(P0, requires_grad=True)

        def stacked(x, p):
            return qml.math.hstack(qnode(x, p))

        parts = [stacked(x, p), *qml.jacobian(stacked)(x, p)]
    elif interface == "torch":
        import torch

        x = torch.tensor(X0, requires_grad=True)
        p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)

        def stacked(x, p):
            return torch.hstack(qnode(x, p))

        jac = torch.autograd.functional.jacobian(stacked, (x, p))
        parts = [stacked(x, p).detach(), *jac]
    elif interface == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # as the other JAX tests do

        def stacked(x, p):
            return jax.numpy.hstack(qnode(x, p))

        x, p = jax.numpy.array(X0), jax.numpy.array(P0)
        parts = [stacked(x, p), *jax.jacobian(stacked, argnums=(0, 1))(x, p)]
    else:
        import tensorflow as tf

        x, p = tf.Variable(X0, dtype=tf.float64), tf.Variable(P0, dtype=tf.float64)
        with tf.GradientTape(persistent=True) as tape:
            result = tf.experimental.numpy.hstack(qnode(x, p))
        parts = [result, *tape.jacobian(result, [x, p])]
    return np.hstack([np.ravel(np.asarray(part)) for part in parts])
