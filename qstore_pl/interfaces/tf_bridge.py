"""A :class:`HostFunction` as a differentiable TensorFlow op.

``tf.numpy_function`` runs the circuit on the host and ``tf.custom_gradient`` routes
the backward pass to the host VJP, so PennyLane's (deprecated) TensorFlow interface
is never involved. Host calls cannot be compiled by XLA: layers using this op must
report ``supports_jit = False``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qstore_pl.interfaces.host import HostFunction


def tensorflow_op(host: HostFunction, n_outputs: int, keep_vjp: bool = True) -> Callable:
    """Wrap ``host`` into ``op(*tensors) -> (batch, n_outputs)`` tensor.

    Parameters
    ----------
    host : HostFunction
        The circuit function.
    n_outputs : int
        Width of the output.
    keep_vjp : bool
        Trace the forward pass so the backward pass does not simulate it again; off
        for inference.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def op(*args):
        dtype = args[0].dtype

        def forward(*arrays):
            return host.forward(*arrays, keep_vjp=keep_vjp).astype(dtype.as_numpy_dtype)

        value = tf.numpy_function(forward, list(args), dtype, stateful=True)
        value.set_shape([args[0].shape[0], n_outputs])

        def grad(upstream):
            def backward(*arrays):
                grads = host.vjp(arrays[:-1], arrays[-1])
                return [np.asarray(g, dtype=a.dtype) for g, a in zip(grads, arrays, strict=False)]

            grads = tf.numpy_function(
                backward, [*args, upstream], [a.dtype for a in args], stateful=True
            )
            for g, a in zip(grads, args, strict=True):
                g.set_shape(a.shape)
            return grads

        return value, grad

    return op
