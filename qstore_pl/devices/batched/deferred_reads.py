"""The reads of the backward sweep's second-last step, taken at its last step instead.

Where a circuit opens with one-wire gates on ``|0…0>`` (an encoding and a first layer
of rotations), ψ at the sweep's last reads is their product state ``f`` and those reads
come from λ alone (:func:`jit_kernels._product_transitions`). The step before them
undoes, on ψ and λ, the gates between its reads and the last ones. Where those are a
layer of one-wire gates ``V`` and then one affine permutation ``P`` (a ring of CNOTs:
W1 and most hardware-efficient ansätze), ψ at the second-last reads is ``V P f``, and
its reads can wait for λ to reach the last step too:

``<λ₂|E|ψ₂> = <λ₁| P† (U† E U) P |f>``, with ``λ₁ = P† V† λ₂`` the last step's λ, ``E =
|a><b|`` on the read's wire and ``U`` the gate of ``V`` there (``U† E U`` is a
combination of the four ``E``). With ``P|x> = |A x ⊕ c>`` over the bits of ``x``,
``r`` row ``p`` of ``A`` and ``s = A⁻¹ e_p``,

``<λ₁| P† |a><b|_p P |f> = ½ (<λ₁|X_s^d f> + (-1)^(a ⊕ c_p) <λ₁|Z_r X_s^d f>)``, ``d =
a ⊕ b``

(``Z_r``: ``Z`` on the bits of ``r``, ``X_s`` alike): inner products of λ₁ with
*product* states. One pass over λ₁ sums it against a few of their halves
(:attr:`DeferredReads.low_keys`, :attr:`DeferredReads.high_keys`), and each product
then costs a sum over the other half. ψ is then not undone through the second-last
step, and its reads take no pass over ψ and λ of their own: W1's sweep is 1.32x faster
at 12 qubits, 1.22x at 16 and 1.26x at 20 (``benchmarks/bench_adjoint.py
--compare-to``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from qstore_pl.devices.batched import jit_kernels

#: Whether the backward sweep defers the second-last step's reads where it can (off:
#: it reads them where they are, as before; the tests compare the two).
ENABLED = True


@dataclass(frozen=True)
class DeferredReads:
    """What the sweep's last step needs to read the second-last step's wires.

    A product state ``g`` is ``f`` with ``Z`` on the bits of a mask ``z`` and ``X`` on
    those of a mask ``x``: ``g_q(v) = (-1)^(z_q v) f_q(v ⊕ x_q)``.

    Attributes
    ----------
    low_keys : (S, 2) int
        ``(z, x)`` on the low ``n // 2`` bits of the halves λ is summed against by high
        index; the first is ``(0, 0)``.
    high_keys : (R, 2) int
        ``(z, x)`` on the other bits of the halves λ is summed against by low index; the
        first is ``(0, 0)``.
    products : (G, 4) int
        Per product: through which sums (0: by high index, 1: by low index), which of
        them, and its ``(z, x)``; product 0 is ``f`` itself.
    reads : (D, 4) int
        Per wire the second-last step reads (in its order): the products ``Z_r f``,
        ``X_s f``, ``Z_r X_s f`` and the bit ``c_p``.
    undo_bits : (U,) int
        Per gate of the last step before its permutation, the bit its wire has at the
        reads, or -1 for a rotation of the row's bits (rows of 10-15 qubits).
    """

    low_keys: np.ndarray
    high_keys: np.ndarray
    products: np.ndarray
    reads: np.ndarray
    undo_bits: np.ndarray

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays, as :func:`jit_kernels.adjoint_sweep` takes them."""
        return self.low_keys, self.high_keys, self.products, self.reads, self.undo_bits


def plan_deferred(
    encoded: tuple[np.ndarray, ...],
    ranges: np.ndarray,
    offsets: np.ndarray,
    bits: np.ndarray,
    n: int,
) -> DeferredReads | None:
    """The deferred reads of a sweep whose last reads see a product state, checked
    against it once here (:func:`jit_kernels.checked_deferred`), or ``None`` where its
    last step is not one-wire gates (and rotations of the row's bits that cancel) and
    then one affine permutation, or the last two steps do not both read.

    Parameters
    ----------
    encoded : tuple of arrays
        The sweep plan's encoded sequence (``SequencePlan.encoded``).
    ranges : (steps, 2) int
        Each step's gates in it.
    offsets, bits : int arrays
        The bit positions each step reads: step ``s``'s at ``offsets[s] : offsets[s + 1]``.
    n : int
        Wires.
    """
    kinds, _, position_offsets, positions, _ = encoded
    steps = len(ranges)
    if steps < 2 or offsets[steps] == offsets[steps - 1]:
        return None
    read_bits = bits[offsets[steps - 2] : offsets[steps - 1]]
    if not read_bits.size:
        return None
    a, b = ranges[-1]
    if b <= a or kinds[b - 1] != jit_kernels.AFFINE:
        return None
    shift, undo_bits = 0, []  # a rotation moves bit (p + shift) % n to p
    for g in range(a, b - 1):
        position = int(positions[position_offsets[g]])
        if kinds[g] == jit_kernels.ROTATION:
            shift = (shift + position) % n
            undo_bits.append(-1)
        elif kinds[g] == jit_kernels.DENSE and position_offsets[g + 1] - position_offsets[g] == 1:
            undo_bits.append((position + shift) % n)
        else:
            return None
    if shift:
        return None
    tables = positions[position_offsets[b - 1] : position_offsets[b]]
    const, columns = _affine_map(tables, n)
    inverse = _inverse_columns(columns, n)
    index: dict[tuple[int, int], int] = {(0, 0): 0}  # each product's place in the list
    reads = []
    for p in read_bits:
        row = sum(((col >> p) & 1) << q for q, col in enumerate(columns))
        flip = inverse[p]
        keys = ((row, 0), (0, flip), (row, flip))
        reads.append((*(index.setdefault(key, len(index)) for key in keys), (const >> p) & 1))
    products = list(index)
    low_keys, high_keys, through = _cover(products, n)
    encoded_products = [(*through[j], z, x) for j, (z, x) in enumerate(products)]
    found = DeferredReads(
        np.array(low_keys, dtype=np.int64).reshape(-1, 2),
        np.array(high_keys, dtype=np.int64).reshape(-1, 2),
        np.array(encoded_products, dtype=np.int64).reshape(-1, 4),
        np.array(reads, dtype=np.int64).reshape(-1, 4),
        np.array(undo_bits, dtype=np.int64),
    )
    jit_kernels.checked_deferred(found.arrays(), True, ranges, offsets, kinds)
    return found


def _affine_map(tables: np.ndarray, n: int) -> tuple[int, list[int]]:
    """``(c, columns)`` of the map ``x -> A x ⊕ c`` an affine gather's tables encode
    (``index[h L + l] = high[h] ^ low[l]``, :func:`jit_kernels._affine_gather`)."""
    low = n // 2
    n_high = 1 << (n - low)
    high, lows = tables[:n_high], tables[n_high:]

    def index(k: int) -> int:
        return int(high[k >> low] ^ lows[k & ((1 << low) - 1)])

    const = index(0)
    return const, [index(1 << q) ^ const for q in range(n)]


def _inverse_columns(columns: list[int], n: int) -> list[int]:
    """The columns of ``A⁻¹`` over GF(2), ``A`` given by its columns (a bit mask each)."""
    # rows of [A | I], reduced to [I | A⁻¹]
    rows = [sum(((columns[q] >> i) & 1) << q for q in range(n)) | (1 << (n + i)) for i in range(n)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if (rows[i] >> col) & 1)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for i in range(n):
            if i != col and (rows[i] >> col) & 1:
                rows[i] ^= rows[col]
    inverse_rows = [row >> n for row in rows]
    return [sum(((inverse_rows[i] >> q) & 1) << i for i in range(n)) for q in range(n)]


def _cover(
    products: list[tuple[int, int]], n: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """Which halves to sum λ against so that every product has one of its own: each
    sum costs a multiply-add per amplitude, so as few as cover them all (greedy; the
    unmodified halves come first, the last step's own reads use them). Returns the low
    and high keys and, per product, ``(0, low key index)`` or ``(1, high key index)``."""
    low_mask = (1 << (n // 2)) - 1
    high_mask = ((1 << n) - 1) ^ low_mask
    halves = [((z & low_mask, x & low_mask), (z & high_mask, x & high_mask)) for z, x in products]
    low_keys, high_keys = [(0, 0)], [(0, 0)]
    left = list(range(len(products)))
    while True:
        left = [j for j in left if halves[j][0] not in low_keys and halves[j][1] not in high_keys]
        if not left:
            break
        counts = Counter(side for j in left for side in ((0, halves[j][0]), (1, halves[j][1])))
        side, key = max(counts, key=lambda k: (counts[k], -k[0]))
        (low_keys if side == 0 else high_keys).append(key)
    return (
        low_keys,
        high_keys,
        [
            (0, low_keys.index(lo)) if lo in low_keys else (1, high_keys.index(hi))
            for lo, hi in halves
        ],
    )
