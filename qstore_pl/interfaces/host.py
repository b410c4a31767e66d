"""A circuit function evaluated on the host in numpy, differentiated with autograd.

Framework layers need two things from a circuit: its value for a batch and a
vector-Jacobian product. PennyLane's autograd interface gives both for any QNode or
``qml.execute`` call (classical pre-processing inside the circuit function included)
and, on ``qstore.router``, turns the backward pass into one device VJP per batch.
Routing every framework through it keeps one code path that does not depend on
PennyLane's TensorFlow interface surviving.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence

import autograd.numpy as anp
import numpy as np
from autograd import make_vjp

from qstore_pl.support.bounded_cache import BoundedCache


def stack_results(results, batch_size: int):
    """Flatten a circuit's results to one ``(batch_size, n_outputs)`` array.

    A QNode returns one array or a tuple of arrays (one per measurement), each with
    the batch as its leading axis when the inputs are broadcast; the measurements are
    concatenated along the last axis. Works on autograd boxes as well as arrays.
    """
    parts = results if isinstance(results, (tuple, list)) else (results,)
    return anp.concatenate([anp.reshape(part, (batch_size, -1)) for part in parts], axis=1)


class HostFunction:
    """A differentiable ``(batch, n_outputs)``-valued function of numpy arrays.

    Parameters
    ----------
    fn : Callable
        ``fn(*arrays)`` returning a 2-D array; written with ``autograd.numpy`` or
        PennyLane calls on the autograd interface so that autograd can trace it.
    diff_argnums : Sequence[int] or None
        Arguments that receive gradients; the others are constants. ``None``: all.

    Notes
    -----
    Values are computed in float64 whatever the caller's dtype; bridges cast back.

    Frameworks ask for the value in the forward pass and for the VJP later, often in
    separate host callbacks. ``forward(..., keep_vjp=True)`` traces the forward pass
    and keeps its VJP closure, keyed by the arguments' contents, so that ``vjp`` on
    the same arguments reuses it instead of simulating the forward pass again.
    """

    _KEPT = 8  # forward passes whose VJP closures wait for a backward pass

    def __init__(self, fn: Callable[..., object], diff_argnums: Sequence[int] | None = None):
        self._fn = fn
        self._diff_argnums = None if diff_argnums is None else tuple(diff_argnums)
        self._kept: BoundedCache[bytes, Callable] = BoundedCache(self._KEPT)
        self._lock = threading.Lock()

    def argnums(self, n_args: int, needed: Sequence[int] | None = None) -> tuple[int, ...]:
        """Indices of the arguments that get gradients, for ``n_args`` arguments: of
        those the caller ``needed`` (all, if it does not say)."""
        own = tuple(range(n_args)) if self._diff_argnums is None else self._diff_argnums
        return own if needed is None else tuple(i for i in own if i in needed)

    def forward(
        self, *arrays, keep_vjp: bool = False, needed: Sequence[int] | None = None
    ) -> np.ndarray:
        """The value; with ``keep_vjp`` also remember the VJP for a later :meth:`vjp`.

        Without ``keep_vjp`` plain arrays reach PennyLane untracked, so no derivative
        work runs (inference). ``needed``: the arguments whose gradients the caller
        will use (a framework knows which of its tensors require them); the others
        get zeros, and no derivative work.
        """
        if not keep_vjp:
            return np.asarray(self._fn(*(_as_float64(a) for a in arrays)), dtype=np.float64)
        value, vjp = self.forward_and_vjp(*arrays, needed=needed)
        with self._lock:
            self._kept[_digest(arrays)] = vjp
        return value

    def forward_and_vjp(
        self, *arrays, needed: Sequence[int] | None = None
    ) -> tuple[np.ndarray, Callable[[np.ndarray], tuple]]:
        """Value and a function mapping a cotangent to one gradient per argument.

        Arguments outside ``diff_argnums`` (and ``needed``) get zero gradients, so
        callers can hand the result straight to a framework that wants one gradient
        per input.
        """
        arrays = tuple(_as_float64(a) for a in arrays)
        argnums = self.argnums(len(arrays), needed)
        if not argnums:
            value = np.asarray(self._fn(*arrays), dtype=np.float64)
            return value, lambda cotangent: tuple(np.zeros_like(a) for a in arrays)

        def traced(diff_args):
            full = list(arrays)
            for i, value in zip(argnums, diff_args, strict=True):
                full[i] = value
            return self._fn(*full)

        vjp_fn, value = make_vjp(traced)(tuple(arrays[i] for i in argnums))

        def vjp(cotangent) -> tuple[np.ndarray, ...]:
            grads = vjp_fn(np.asarray(cotangent, dtype=np.float64).reshape(np.shape(value)))
            out = [np.zeros_like(a) for a in arrays]
            for i, grad in zip(argnums, grads, strict=True):
                out[i] = np.asarray(grad, dtype=np.float64).reshape(arrays[i].shape)
            return tuple(out)

        return np.asarray(value, dtype=np.float64), vjp

    def vjp(
        self, arrays: Sequence, cotangent, needed: Sequence[int] | None = None
    ) -> tuple[np.ndarray, ...]:
        """Gradients of ``sum(cotangent * fn(*arrays))`` for every argument (zeros but
        for those ``needed``, when given)."""
        with self._lock:
            kept = self._kept.pop(_digest(arrays), None)
        if kept is None:
            kept = self.forward_and_vjp(*arrays, needed=needed)[1]
        return kept(cotangent)


def _digest(arrays: Sequence) -> bytes:
    """Content key of a list of arrays: same values, shapes and dtypes, same key."""
    h = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    return h.digest()


def _as_float64(array) -> np.ndarray:
    array = np.asarray(array)
    return array if array.dtype == np.float64 else array.astype(np.float64)
