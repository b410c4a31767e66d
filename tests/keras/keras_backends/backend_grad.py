"""Gradients of ``sum(cotangent * layer(x))`` with the active Keras backend's own autodiff."""

from __future__ import annotations

import keras
import numpy as np


def layer_gradients(layer, x: np.ndarray, cotangent: np.ndarray, jit: bool = False):
    """Return ``(d/dx, [d/dw for each trainable weight])`` as float64 numpy arrays."""
    backend = keras.backend.backend()
    if not layer.built:
        layer.build((None, x.shape[-1]))
    weights = layer.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(layer(xt) * cotangent)
        grads = tape.gradient(loss, [xt, *[w.value for w in weights]])
        return _numpy(grads[0]), [_numpy(g) for g in grads[1:]]
    if backend == "jax":
        import jax

        def loss(xv, wv):
            y, _ = layer.stateless_call(wv, [], xv)
            return (y * cotangent).sum()

        grad = jax.grad(loss, argnums=(0, 1))
        if jit:
            grad = jax.jit(grad)
        gx, gw = grad(x, [w.value for w in weights])
        return _numpy(gx), [_numpy(g) for g in gw]
    import torch

    xt = torch.tensor(x, requires_grad=True)
    for w in weights:
        w.value.grad = None
    loss = (layer(xt) * torch.as_tensor(cotangent)).sum()
    loss.backward()
    return _numpy(xt.grad), [_numpy(w.value.grad) for w in weights]


def _numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)
