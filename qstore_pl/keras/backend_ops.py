"""Pick the bridge for the active Keras backend."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

from qstore_pl.interfaces.host import HostFunction

try:  # Keras marks shape inference with a scope; not re-exported publicly
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope
except ImportError:  # pragma: no cover - a Keras without it runs the host on fake data

    def in_symbolic_scope() -> bool:
        """Never symbolic: this Keras cannot say."""
        return False


SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")


def angle_initializer() -> keras.initializers.Initializer:
    r"""Default for circuit weights: rotation angles uniform in :math:`[0, 2\pi)`."""
    return keras.initializers.RandomUniform(0.0, 2 * math.pi)


def active_backend() -> str:
    """The Keras backend in use; a clear error for the ones without a bridge."""
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"KERAS_BACKEND={backend!r} is not supported by qstore_pl's Keras layers; "
            f"set it to one of {SUPPORTED_BACKENDS} before importing keras"
        )
    return backend


def differentiable_op(host: HostFunction, n_outputs: int, keep_vjp: bool) -> Callable:
    """``op(*tensors)`` for the active backend, differentiable through ``host``'s VJP."""
    backend = active_backend()
    if backend == "tensorflow":
        from qstore_pl.interfaces.tf_bridge import tensorflow_op

        return tensorflow_op(host, n_outputs, keep_vjp=keep_vjp)
    if backend == "jax":
        from qstore_pl.interfaces.jax_bridge import jax_op

        return jax_op(host, n_outputs)
    from qstore_pl.interfaces.torch_bridge import torch_op

    return torch_op(host)


def cached_op(cache: dict, host: HostFunction, n_outputs: int, keep_vjp: bool) -> Callable:
    """:func:`differentiable_op`, built once per layer and ``keep_vjp`` setting.

    During Keras's shape inference (the torch backend calls layers on tensors filled
    with a constant) the op returns zeros instead of running circuits on fake data,
    which could fail or, on a paid backend, cost money.
    """
    if in_symbolic_scope():
        return lambda first, *rest: keras.ops.zeros((first.shape[0], n_outputs), first.dtype)
    if keep_vjp not in cache:
        cache[keep_vjp] = differentiable_op(host, n_outputs, keep_vjp)
    return cache[keep_vjp]


def supports_xla() -> bool:
    """Host callbacks compile under ``jax.jit`` and ``torch.compile`` but not TF's XLA."""
    return active_backend() != "tensorflow"
