"""Pick the bridge for the active Keras backend."""

from __future__ import annotations

from collections.abc import Callable

import keras

from qstore_pl.interfaces.host import HostFunction

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")


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


def supports_xla() -> bool:
    """Host callbacks compile under ``jax.jit`` and ``torch.compile`` but not TF's XLA."""
    return active_backend() != "tensorflow"
