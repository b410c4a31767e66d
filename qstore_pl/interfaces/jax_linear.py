"""A circuit's derivatives with respect to its angle table, as two linear JAX primitives.

JAX differentiates in reverse by transposing the linear part of a JVP. With a
``custom_jvp`` whose tangent is a host Jacobian contracted in ``jax.numpy``, every
reverse pass computes the whole Jacobian (one adjoint state per output and sample);
``custom_vjp`` gives reverse mode but forbids forward mode (``jacfwd``). Here the
tangent map is a primitive, ``angle_jvp``, linear in the tangents, whose transpose is
another, ``angle_vjp``, linear in the cotangents; each is the other's transpose:

- ``grad`` and ``jacrev`` transpose ``angle_jvp`` into ``angle_vjp``: the host runs
  one adjoint sweep with the cotangents (``jacrev``'s ``T`` of them stacked), reusing
  the forward states of the step;
- ``jvp`` and ``jacfwd`` evaluate ``angle_jvp``: the host's per-sample Jacobian
  contracted with the tangents;
- ``vmap`` adds leading axes to either argument: the host folds the angles' leading
  axes into the circuit batch (:func:`fold`), and a cotangent's or tangent's own
  ones, over shared angles, into stacked copies;
- differentiating either with respect to the angles (second derivatives) raises.

Both reach the host through ``jax.pure_callback``, so ``jit`` compiles them. The host
object (an :class:`~qstore_pl.layers.angle_table.AngleTable`) is the primitives'
static parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

SECOND_ORDER_MESSAGE = (
    "second derivatives (jax.hessian, jacfwd of jacrev, grad of grad) of a "
    "qstore_pl.jax circuit function are not available: the device's adjoint derivatives "
    "are first order. For higher orders use a QNode with interface='jax' and "
    "diff_method='backprop' (qstore.router then backpropagates on default.qubit)"
)


def fold(angles: np.ndarray) -> np.ndarray:
    """``(*lead, K, B)`` angles as one ``(K, prod(lead) * B)`` batch, copy after copy."""
    angles = np.asarray(angles, dtype=np.float64)
    k, b = angles.shape[-2:]
    return np.moveaxis(angles.reshape(-1, k, b), 0, 1).reshape(k, -1)


def folded_values(run: Callable[[np.ndarray], np.ndarray], angles, dtype) -> np.ndarray:
    """``run`` (``(K, B) -> (B, O)``) on ``(*lead, K, B)`` angles: ``(*lead, B, O)``."""
    lead, batch = np.shape(angles)[:-2], np.shape(angles)[-1]
    values = run(fold(angles))
    return values.reshape(*lead, batch, values.shape[-1]).astype(dtype)


def _host_jvp(table, angles, tangents) -> np.ndarray:
    """``(*A, K, B)`` angles, ``(*C, K, B)`` tangents: ``(*L, B, O)`` output tangents."""
    angles, tangents = np.asarray(angles), np.asarray(tangents)
    lead = np.broadcast_shapes(angles.shape[:-2], tangents.shape[:-2])
    k, b = angles.shape[-2:]
    if math.prod(angles.shape[:-2]) == 1:  # shared angles: one Jacobian for every tangent
        jacobian = table.jacobian(angles.reshape(k, b))
        flat = np.asarray(tangents, dtype=np.float64).reshape(-1, k, b)
        out = np.einsum("bok,tkb->tbo", jacobian, flat).reshape(*tangents.shape[:-2], b, -1)
    else:
        jacobian = table.jacobian(fold(np.broadcast_to(angles, (*lead, k, b))))
        flat = fold(np.broadcast_to(tangents, (*lead, k, b)))
        out = np.einsum("bok,kb->bo", jacobian, flat).reshape(*lead, b, -1)
    return np.broadcast_to(out, (*lead, *out.shape[-2:])).astype(angles.dtype)


def _host_vjp(table, angles, cotangents) -> np.ndarray:
    """``(*A, K, B)`` angles, ``(*C, B, O)`` cotangents: ``(*L, K, B)`` angle cotangents."""
    angles, cotangents = np.asarray(angles), np.asarray(cotangents)
    lead = np.broadcast_shapes(angles.shape[:-2], cotangents.shape[:-2])
    k, b = angles.shape[-2:]
    o = cotangents.shape[-1]
    if math.prod(angles.shape[:-2]) == 1:  # shared angles: stacked cotangents, one sweep
        grads = table.vjp(angles.reshape(k, b), cotangents.reshape(-1, b, o))
        out = grads.reshape(*cotangents.shape[:-2], k, b)
    else:
        folded = np.broadcast_to(cotangents, (*lead, b, o)).reshape(1, -1, o)
        grads = table.vjp(fold(np.broadcast_to(angles, (*lead, k, b))), folded)[0]
        out = np.moveaxis(grads.reshape(k, -1, b), 1, 0).reshape(*lead, k, b)
    return np.broadcast_to(out, (*lead, k, b)).astype(angles.dtype)


def _unbroadcast(x, shape: tuple[int, ...]):
    """Sum ``x`` over the leading axes that ``shape`` broadcast (same rank)."""
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, x.shape)) if n == 1 and m != 1)
    return x.sum(axis=axes, keepdims=True) if axes else x


def _make_primitives():
    import jax
    import jax.numpy as jnp
    from jax.core import ShapedArray
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir

    angle_jvp = Primitive("qstore_angle_jvp")
    angle_vjp = Primitive("qstore_angle_vjp")

    def jvp_shape(angles, tangents, *, table):
        lead = np.broadcast_shapes(angles.shape[:-2], tangents.shape[:-2])
        return ShapedArray((*lead, angles.shape[-1], table.n_outputs), angles.dtype)

    def vjp_shape(angles, cotangents, *, table):
        lead = np.broadcast_shapes(angles.shape[:-2], cotangents.shape[:-2])
        return ShapedArray((*lead, *angles.shape[-2:]), angles.dtype)

    def callback(host, shape):
        def call(angles, linear, *, table):
            out = shape(angles, linear, table=table)
            result = jax.ShapeDtypeStruct(out.shape, out.dtype)
            return jax.pure_callback(partial(host, table), result, angles, linear)

        return call

    for prim, host, shape in ((angle_jvp, _host_jvp, jvp_shape), (angle_vjp, _host_vjp, vjp_shape)):
        call = callback(host, shape)
        prim.def_abstract_eval(shape)
        prim.def_impl(call)
        mlir.register_lowering(prim, mlir.lower_fun(call, multiple_results=False))

        def batched(args, dims, *, table, prim=prim):
            # a leading axis on both: the host broadcasts size 1 against the mapped one
            moved = [
                jnp.expand_dims(x, 0) if d is None else jnp.moveaxis(x, d, 0)
                for x, d in zip(args, dims)
            ]
            return prim.bind(*moved, table=table), 0

        batching.primitive_batchers[prim] = batched

        def derivative(primals, tangents, *, table, prim=prim):
            angles, linear = primals
            d_angles, d_linear = tangents
            if type(d_angles) is not ad.Zero:
                raise NotImplementedError(SECOND_ORDER_MESSAGE)
            out = prim.bind(angles, linear, table=table)
            if type(d_linear) is ad.Zero:
                return out, ad.Zero(jax.core.get_aval(out).to_tangent_aval())
            return out, prim.bind(angles, d_linear, table=table)

        ad.primitive_jvps[prim] = derivative

    def transposed(other):
        def rule(ct, angles, linear, *, table):
            if ad.is_undefined_primal(angles):
                raise NotImplementedError(SECOND_ORDER_MESSAGE)
            if type(ct) is ad.Zero:
                return None, ad.Zero(linear.aval)
            return None, _unbroadcast(other.bind(angles, ct, table=table), linear.aval.shape)

        return rule

    ad.primitive_transposes[angle_jvp] = transposed(angle_vjp)
    ad.primitive_transposes[angle_vjp] = transposed(angle_jvp)
    return angle_jvp, angle_vjp


_PRIMITIVES: tuple | None = None


def angle_jvp(table, angles, tangents):
    """Output tangents ``(..., B, O)`` of tangents ``(..., K, B)`` of the angles."""
    global _PRIMITIVES
    if _PRIMITIVES is None:  # jax is imported on first use, not with qstore_pl
        _PRIMITIVES = _make_primitives()
    return _PRIMITIVES[0].bind(angles, tangents, table=table)


__all__ = ["SECOND_ORDER_MESSAGE", "angle_jvp", "fold", "folded_values"]
