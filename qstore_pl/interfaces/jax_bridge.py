"""A :class:`HostFunction` as a differentiable JAX function that works under ``jax.jit``.

``jax.pure_callback`` runs the circuit on the host; ``jax.custom_vjp`` sends the
backward pass to the host VJP. The forward rule used under differentiation keeps the
VJP closure on the host, so a training step simulates the forward pass once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qstore_pl.interfaces.host import HostFunction


def jax_op(host: HostFunction, n_outputs: int) -> Callable:
    """Wrap ``host`` into ``op(*arrays) -> (batch, n_outputs)`` array."""
    import jax

    def shape_of(args):
        return jax.ShapeDtypeStruct((args[0].shape[0], n_outputs), args[0].dtype)

    def call(keep_vjp, *args):
        out = shape_of(args)

        def forward(*arrays):
            return host.forward(*arrays, keep_vjp=keep_vjp).astype(out.dtype)

        return jax.pure_callback(forward, out, *args, vmap_method="sequential")

    @jax.custom_vjp
    def op(*args):
        return call(False, *args)

    def op_fwd(*args):
        return call(True, *args), args

    def op_bwd(args, upstream):
        shapes = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args)

        def backward(*arrays):
            grads = host.vjp(arrays[:-1], arrays[-1])
            return tuple(np.asarray(g, dtype=s.dtype) for g, s in zip(grads, shapes, strict=True))

        return jax.pure_callback(backward, shapes, *args, upstream, vmap_method="sequential")

    op.defvjp(op_fwd, op_bwd)
    return op
