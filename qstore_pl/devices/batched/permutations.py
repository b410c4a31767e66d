"""Permutation gates as gather indices over all ``2**n`` basis states.

A permutation gate (CNOT, SWAP, X, Toffoli) applies as ``new_state = state[index]``.
Consecutive permutations compose into one index. CNOT, SWAP and X are *affine* maps
of the index bits: their composition (W1's ring of CNOTs) is one too, and its index
comes from two tables of ``2**(n/2)`` entries, ``index[h L + l] = high[h] ^ low[l]``,
with no index per gate: at 20 qubits a ring of 20 CNOTs built 20 indices of 8 MB and
composed them, most of the setup of a first training step. The row kernel gathers
from the two tables themselves.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from qstore_pl.devices.batched import jit_kernels

#: gather indices by (local permutation, wires, width), for as long as a gate holds one
_SHARED_GATHERS: weakref.WeakValueDictionary[tuple, np.ndarray] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class Affine:
    """An affine map of index bits: ``i -> const ^ (cols[b] for each set bit b of i)``."""

    const: int
    cols: tuple[int, ...]

    def __call__(self, i: int) -> int:
        out = self.const
        for b, col in enumerate(self.cols):
            if (i >> b) & 1:
                out ^= col
        return out

    def after(self, inner: Affine) -> Affine:
        """``self ∘ inner``: ``inner`` maps the index first."""
        return Affine(self(inner.const), tuple(self(col) ^ self.const for col in inner.cols))

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The map as two tables, ``index[h L + l] = high[h] ^ low[l]`` (``L = 2**(n //
        2)``): ``(high, low)``."""
        low = len(self.cols) // 2
        return _span(self.cols[low:], 0), _span(self.cols[:low], self.const)

    def index(self) -> np.ndarray:
        """The map at every index below ``2**n``, from :meth:`tables`."""
        high, low = self.tables()
        return np.bitwise_xor.outer(high, low).reshape(-1)


def _span(cols: Sequence[int], start: int) -> np.ndarray:
    """``start ^ (cols[b] for each set bit b of j)`` for ``j < 2**len(cols)``."""
    table = np.full(1 << len(cols), start, dtype=np.int64)
    for b, col in enumerate(cols):
        half = 1 << b
        table[half : 2 * half] = table[:half] ^ col
    return table


class Gather:
    """A permutation gate's gather index over all ``2**n`` basis states, built on first
    use (``np.asarray(gather)``).

    qsim's kernels apply permutations from their small local matrix and never need
    it; at 20 qubits each index is 8 MB and its inverse by ``argsort`` took 64 ms, 80
    CNOTs made 7 s of a first training step.
    """

    def __init__(self, local: np.ndarray, wires: Sequence[int], n: int):
        self.local, self.wires, self.n = local, tuple(wires), n

    @cached_property
    def index(self) -> np.ndarray:
        """The gather index: ``new_state = state[..., index]`` (read-only).

        Equal permutations share one array while any gate holds it: W1's ring of CNOTs
        repeats each of its ``n`` gates in every layer, and a CNOT is its own inverse,
        so 4 layers forward and backward need ``n`` indices, not ``8n`` (at 16 qubits
        0.16 s of CPU of a first step, at 20 qubits 128 MB). The row kernel's plans
        build none for affine permutations (:func:`chain`); the gate-by-gate kernels
        and non-affine runs use these.
        """
        key = (self.local.dtype.str, self.local.tobytes(), self.wires, self.n)
        index = _SHARED_GATHERS.get(key)
        if index is None:
            index = full_permutation(self.local, self.wires, self.n)
            index.flags.writeable = False
            _SHARED_GATHERS[key] = index
        return index

    @cached_property
    def affine(self) -> Affine | None:
        """The index as an affine map of the index bits, or ``None`` when the gate's
        local permutation is not affine (Toffoli)."""
        inverse = [int(j) for j in np.argsort(self.local)]  # local state j <- inverse[j]
        k = len(self.wires)
        base = inverse[0]
        steps = [inverse[1 << q] ^ base for q in range(k)]  # per local bit, q = 0 lowest
        for j, source in enumerate(inverse):
            expected = base
            for q in range(k):
                if (j >> q) & 1:
                    expected ^= steps[q]
            if source != expected:
                return None
        shifts = [self.n - 1 - w for w in self.wires]  # wire p is local bit k - 1 - p

        def spread(local: int) -> int:
            return sum(1 << shifts[p] for p in range(k) if (local >> (k - 1 - p)) & 1)

        cols = [1 << b for b in range(self.n)]
        for p in range(k):
            cols[shifts[p]] = spread(steps[k - 1 - p])
        return Affine(spread(base), tuple(cols))

    def inverse(self) -> Gather:
        """The inverse permutation's gather, from the local permutation (no sort)."""
        return Gather(np.argsort(self.local), self.wires, self.n)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.index if dtype is None else self.index.astype(dtype, copy=False)


def full_permutation(local: np.ndarray, wires: Sequence[int], n: int) -> np.ndarray:
    """Gather indices on ``n`` qubits for a permutation of the basis states of ``wires``.

    ``new_state = state[..., gather]`` applies the gate that sends ``|j>`` to
    ``|local[j]>`` on ``wires``.
    """
    inverse = np.argsort(local).astype(np.int64)  # new[i] = old[inverse[i]] on the wires
    shifts = np.array([n - 1 - w for w in wires], dtype=np.int64)
    return jit_kernels.permutation_gather(inverse, shifts, 2**n)


def chain(gathers: Sequence[Gather]) -> Affine | np.ndarray:
    """Permutations applied one after another (``gathers[0]`` first): as one affine map
    where every one is affine, else as one gather index.

    Affine maps compose with no index per gate; a lone other permutation keeps its
    shared index, and others compose index by index.
    """
    maps = [g.affine for g in gathers if g.affine is not None]
    if len(maps) == len(gathers):
        composed = maps[0]
        for inner in maps[1:]:
            composed = composed.after(inner)
        return composed
    index = np.asarray(gathers[0])
    for g in gathers[1:]:
        index = index[np.asarray(g)]
    return index
