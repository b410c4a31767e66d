"""Compiled gate kernel (numba): a whole gate sequence, row by row, in place.

``states`` is ``(M, 2**n)``. Each row (one circuit's state) is split into separate
real and imaginary planes, gets every gate of the sequence while it sits in the CPU
cache (a row is 512 KiB at 16 qubits and 8 MiB at 20 in complex64), and is written
back: a sequence costs one trip to main memory per row instead of one per gate, and
on separate planes the compiler vectorises the arithmetic (interleaved complex
numbers defeat it: measured 0.5 against 2.5-3.5 G amplitude updates per second and
core for gates on wires with stride >= 8). Rows run in parallel.

A sequence is encoded as flat arrays (:func:`~qstore_pl.devices.batched.kernel.encode`):
per gate a kind, its wires as bit positions (0 = least significant), and an offset
into flat buffers of matrix or diagonal entries (real and imaginary parts apart). A
gate stores ``K`` matrices, ``K`` being 1 (the whole batch shares it) or the batch
size; row ``r`` uses matrix ``r % K``, which also serves stacked copies of a batch.
Parameters are checked to be finite before any kernel runs, so ``fastmath`` is safe.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from qstore_pl.devices.batched.buffers import Buffers, allocate

#: Gate kinds in an encoded sequence. A rotation is no gate: it moves a row's lowest
#: ``k`` bits to the top (its one position is ``k``), so that later gates on them
#: pair distant amplitudes. A permutation's positions are its gather index over the
#: whole row; an affine one's are two tables (:func:`_affine_gather`).
DENSE, DIAGONAL, PERMUTATION, ROTATION, AFFINE = 0, 1, 2, 3, 4


@njit(cache=True, fastmath=True)
def _one_wire(re, im, mr, mi, base, position, offset=0, run=0, step=0):
    """The 2x2 matrix at ``base`` on bit ``position`` of the planes ``re, im``.

    By default on every pair; with ``run`` and ``step``, only on the pairs in runs of
    ``run`` amplitudes every ``step``, from ``offset`` (a tile of
    :func:`_one_wire_run`). The loop body stays written out here: calling a function
    per block of pairs, even one numba inlines, cost 1.3-1.5x at strides below 32."""
    ar, ai, br, bi = mr[base], mi[base], mr[base + 1], mi[base + 1]
    cr, ci, dr, di = mr[base + 2], mi[base + 2], mr[base + 3], mi[base + 3]
    stride = 1 << position
    if run == 0:
        run = step = stride
    for start in range(0, re.shape[0], 2 * stride):
        for first in range(start + offset, start + stride, step):
            r0 = re[first : first + run]
            i0 = im[first : first + run]
            r1 = re[first + stride : first + stride + run]
            i1 = im[first + stride : first + stride + run]
            for j in range(run):
                x0r = r0[j]
                x0i = i0[j]
                x1r = r1[j]
                x1i = i1[j]
                r0[j] = ar * x0r - ai * x0i + br * x1r - bi * x1i
                i0[j] = ar * x0i + ai * x0r + br * x1i + bi * x1r
                r1[j] = cr * x0r - ci * x0i + dr * x1r - di * x1i
                i1[j] = cr * x0i + ci * x0r + dr * x1i + di * x1r


@njit(cache=True, fastmath=True)
def _dense(re, im, mr, mi, base, positions, lr, li):
    k = positions.shape[0]
    dim = 1 << k
    offsets = np.zeros(dim, dtype=np.int64)
    for j in range(dim):
        off = 0
        for p in range(k):
            if (j >> (k - 1 - p)) & 1:
                off |= 1 << positions[p]
        offsets[j] = off
    ordered = np.sort(positions)
    for g in range(re.shape[0] >> k):
        start = g
        for p in range(k):  # insert a zero bit at every target position
            bit = ordered[p]
            low = start & ((1 << bit) - 1)
            start = ((start - low) << 1) | low
        for j in range(dim):
            lr[j] = re[start + offsets[j]]
            li[j] = im[start + offsets[j]]
        for i in range(dim):
            accr = 0.0
            acci = 0.0
            for j in range(dim):
                m = base + i * dim + j
                accr += mr[m] * lr[j] - mi[m] * li[j]
                acci += mr[m] * li[j] + mi[m] * lr[j]
            re[start + offsets[i]] = accr
            im[start + offsets[i]] = acci


@njit(cache=True, fastmath=True)
def _diagonal(re, im, mr, mi, base, positions):
    k = positions.shape[0]
    size = re.shape[0]
    if k == 1:
        stride = 1 << positions[0]
        for bit in range(2):
            dr, di = mr[base + bit], mi[base + bit]
            for start in range(bit * stride, size, 2 * stride):
                r = re[start : start + stride]
                i = im[start : start + stride]
                for j in range(stride):
                    xr = r[j]
                    xi = i[j]
                    r[j] = dr * xr - di * xi
                    i[j] = dr * xi + di * xr
        return
    for idx in range(size):
        local = 0
        for p in range(k):
            local = (local << 1) | ((idx >> positions[p]) & 1)
        dr, di = mr[base + local], mi[base + local]
        xr = re[idx]
        xi = im[idx]
        re[idx] = dr * xr - di * xi
        im[idx] = dr * xi + di * xr


#: Below this many amplitude updates (rows x amplitudes x gates) a call runs on one
#: thread: waking numba's thread pool costs more than the work (measured ~1 ms per
#: call on a loaded 2-core machine, against microseconds of arithmetic at 4 qubits).
PARALLEL_MIN_WORK = 1 << 17

#: Planes a thread applies gates in: a row and a spare, real and imaginary parts.
_ROW_PLANES = 4


class Scratch:
    """Planes the kernels work in, shared by the calls of one sweep.

    numba allocates with ``malloc``, in 4 KiB pages that go back to the system when
    freed, so planes allocated inside a kernel cost page faults on every call: a
    20-qubit row pair's ten planes are 40 MB, 640 MB at 24 qubits (where faults took
    1.7 s of system time per W1 step). Every call given this ``Scratch`` reuses its
    planes; with a device's ``buffers``
    (:class:`~qstore_pl.devices.batched.buffers.Buffers`) so do its later sweeps.
    """

    def __init__(self, buffers: Buffers | None = None) -> None:
        self._buffer: np.ndarray | None = None
        self._buffers = buffers

    def planes(self, teams: int, count: int, size: int, dtype) -> np.ndarray:
        """``(teams, count, size)`` planes of ``dtype``, contents undefined."""
        need = teams * count * size
        held = self._buffer
        if held is None or held.size < need or held.dtype != dtype:
            held = self._buffer = None  # free for the buffers to hand out again
            buffers = self._buffers
            fresh = allocate(need, dtype) if buffers is None else buffers.empty(need, dtype)
            held = self._buffer = fresh
        return held[:need].reshape(teams, count, size)


def apply_sequence(
    states, kinds, counts, position_offsets, positions, value_offsets, real, imag, scratch=None,
    start=None,
):  # fmt: skip
    """Apply an encoded gate sequence to every row of ``states`` in place.

    With ``start`` the rows' contents are not read: each row starts as the product
    state of its factors (:func:`_product_planes`).

    Parameters
    ----------
    states : (M, 2**n) complex array
    kinds : (G,) int
        ``DENSE``, ``DIAGONAL`` or ``PERMUTATION`` per gate.
    counts : (G,) int
        ``K`` (matrices stored) per gate; unused for permutations.
    position_offsets : (G + 1,) int
        Gate ``g``'s bit positions are ``positions[position_offsets[g]:position_offsets[g+1]]``;
        for a permutation they are the gather index over the whole state.
    value_offsets : (G,) int
        Start of gate ``g``'s matrices (``K * d * d`` values) or diagonals (``K * d``).
    real, imag : float arrays
        Real and imaginary parts of the matrices and diagonals, flattened.
    scratch : Scratch, optional
        Planes to work in, shared by the calls of one sweep (fresh ones by default).
    start : (re, im) float64 arrays, (K, n, 2), optional
        Per row (``r % K``), the two amplitudes of each bit position's one-wire state.
    """
    start_re, start_im = _start_factors(start, states.shape[1])
    work = states.shape[0] * states.shape[1] * (kinds.shape[0] + (start is not None))
    teams = min(numba.get_num_threads(), states.shape[0]) if work >= PARALLEL_MIN_WORK else 1
    planes = (scratch or Scratch()).planes(teams, _ROW_PLANES, states.shape[1], real.dtype)
    if teams > 1:
        _rows_parallel(
            states, kinds, counts, position_offsets, positions, value_offsets, real, imag,
            planes, start_re, start_im,
        )  # fmt: skip
    else:
        _rows_serial(
            states, kinds, counts, position_offsets, positions, value_offsets, real, imag,
            planes[0], start_re, start_im,
        )  # fmt: skip


def _start_factors(start, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``start``'s factors checked against the rows' width, or none (``K = 0``)."""
    n = size.bit_length() - 1
    if start is None:
        empty = np.zeros((0, n, 2))
        return empty, empty
    re, im = (np.ascontiguousarray(part, dtype=np.float64) for part in start)
    if re.shape != im.shape or re.ndim != 3 or re.shape[0] < 1 or re.shape[1:] != (n, 2):
        raise ValueError(f"product-state factors must be (K, {n}, 2), not {re.shape}")
    return re, im


def check_sequence(n, kinds, counts, position_offsets, positions, value_offsets, num_values):
    """Raise ``ValueError`` unless an encoded sequence stays inside its arrays on ``n`` wires.

    The compiled kernels check no bounds (an index past an array's end corrupts the
    heap), so every encoding is checked once, where it is built: gate positions are
    distinct bit positions below ``n``, a permutation gathers ``2**n`` indices below
    ``2**n``, and each gate's ``K`` matrices or diagonals lie inside the value arrays.
    """
    size = 1 << n
    if len(position_offsets) != len(kinds) + 1 or position_offsets[-1] > len(positions):
        raise ValueError("encoded gate sequence: position offsets do not match the gates")
    for g, kind in enumerate(kinds):
        wires = positions[position_offsets[g] : position_offsets[g + 1]]
        if kind == ROTATION:
            if len(wires) != 1 or not 0 < wires[0] < n:
                raise ValueError(f"encoded gate {g}: a rotation takes one bit count in 1..{n - 1}")
            continue
        if kind in (PERMUTATION, AFFINE):
            entries = size if kind == PERMUTATION else (size >> n // 2) + (1 << n // 2)
            if len(wires) != entries or (size and (wires.min() < 0 or wires.max() >= size)):
                what = "gather" if kind == PERMUTATION else "take two tables of"
                raise ValueError(
                    f"encoded gate {g}: a permutation must {what} {entries} indices below {size}"
                )
            continue
        k = len(wires)
        if k == 0 or k > n or wires.min() < 0 or wires.max() >= n or len(set(wires)) != k:
            raise ValueError(
                f"encoded gate {g}: bit positions {list(wires)} are not distinct positions "
                f"below {n}"
            )
        block = (1 << k) if kind == DIAGONAL else 1 << (2 * k)
        if (
            counts[g] < 1
            or value_offsets[g] < 0
            or value_offsets[g] + counts[g] * block > num_values
        ):
            raise ValueError(
                f"encoded gate {g}: {counts[g]} blocks of {block} values at offset "
                f"{value_offsets[g]} overrun the {num_values} values"
            )


@njit(parallel=True, cache=True, fastmath=True)
def _rows_parallel(
    states, kinds, counts, position_offsets, positions, value_offsets, real, imag, planes,
    start_re, start_im,
):  # fmt: skip
    # one set of planes per thread (``planes[t]``), not per row
    teams = planes.shape[0]
    for t in prange(teams):
        lr, li = _locals(kinds, position_offsets, real.dtype)
        for r in range(t, states.shape[0], teams):
            _row(
                states, r, kinds, counts, position_offsets, positions, value_offsets, real,
                imag, planes[t], lr, li, start_re, start_im,
            )  # fmt: skip


@njit(cache=True, fastmath=True)
def _rows_serial(
    states, kinds, counts, position_offsets, positions, value_offsets, real, imag, work,
    start_re, start_im,
):  # fmt: skip
    lr, li = _locals(kinds, position_offsets, real.dtype)
    for r in range(states.shape[0]):
        _row(
            states, r, kinds, counts, position_offsets, positions, value_offsets, real, imag,
            work, lr, li, start_re, start_im,
        )  # fmt: skip


@njit(cache=True, fastmath=True)
def _row(
    states, r, kinds, counts, position_offsets, positions, value_offsets, real, imag, work,
    lr, li, start_re, start_im,
):  # fmt: skip
    row = states[r]
    re, im, sr, si = work[0], work[1], work[2], work[3]
    if start_re.shape[0]:
        k = r % start_re.shape[0]
        _product_planes(re, im, start_re[k], start_im[k])
    else:
        _load(row, re, im)
    re, im, _, _ = _apply_planes(
        re, im, sr, si, r, kinds, counts, position_offsets, positions, value_offsets, real,
        imag, lr, li,
    )  # fmt: skip
    _store(row, re, im)


@njit(cache=True, fastmath=True)
def _load(row, re, im):
    _load_part(row, re, im, 0, 1)


@njit(cache=True)
def product_factors(values, table, fixed, rows, n):
    """Each bit position's two amplitudes after one-wire gates on ``|0>``: real and
    imaginary parts, ``(rows, n, 2)``. Per gate, ``table`` holds its bit position, the
    offset and per-row stride of its values (a ``2x2`` matrix or a diagonal in
    ``values``; a permutation's matrix is ``fixed[offset]``) and its kind."""
    re = np.zeros((rows, n, 2))
    im = np.zeros((rows, n, 2))
    for r in range(rows):
        for b in range(n):
            re[r, b, 0] = 1.0
        for g in range(table.shape[0]):
            bit, offset, stride, kind = table[g, 0], table[g, 1], table[g, 2], table[g, 3]
            v0 = complex(re[r, bit, 0], im[r, bit, 0])
            v1 = complex(re[r, bit, 1], im[r, bit, 1])
            if kind == DIAGONAL:
                base = offset + r * stride
                w0, w1 = values[base] * v0, values[base + 1] * v1
            elif kind == PERMUTATION:
                m = fixed[offset]
                w0 = m[0, 0] * v0 + m[0, 1] * v1
                w1 = m[1, 0] * v0 + m[1, 1] * v1
            else:
                base = offset + r * stride
                w0 = values[base] * v0 + values[base + 1] * v1
                w1 = values[base + 2] * v0 + values[base + 3] * v1
            re[r, bit, 0], im[r, bit, 0] = w0.real, w0.imag
            re[r, bit, 1], im[r, bit, 1] = w1.real, w1.imag
    return re, im


@njit(cache=True, fastmath=True)
def _product_table(fr, fi, first, count, skip, conjugate, tr, ti, z=0, x=0):
    """``tr + i ti`` at ``j < 2**count``: the product over bit positions ``first + q``
    of factor ``f[first + q, bit q of j]`` (conjugated with ``conjugate``), the factor
    at position ``skip`` counted as 1. With masks ``z`` and ``x`` (by bit position) the
    factors are those of ``Z`` and ``X`` on their bits times ``f``: ``(-1)^(z_p v)
    f[p, v ^ x_p]``."""
    sign = -1.0 if conjugate else 1.0
    tr[0] = 1.0
    ti[0] = 0.0
    for q in range(count):
        p = first + q
        half = 1 << q
        a0r, a0i, a1r, a1i = 1.0, 0.0, 1.0, 0.0
        if p != skip:
            flip = (x >> p) & 1
            a0r, a0i = fr[p, flip], sign * fi[p, flip]
            a1r, a1i = fr[p, 1 - flip], sign * fi[p, 1 - flip]
            if (z >> p) & 1:
                a1r, a1i = -a1r, -a1i
        for j in range(half):
            xr, xi = tr[j], ti[j]
            tr[j + half] = xr * a1r - xi * a1i
            ti[j + half] = xr * a1i + xi * a1r
            tr[j] = xr * a0r - xi * a0i
            ti[j] = xr * a0i + xi * a0r


@njit(cache=True, fastmath=True)
def _product_halves(fr, fi, size, dtype):
    """:func:`_product_table` of the low ``n // 2`` bit positions and of the others
    (``size = 2**n``): ``(low re, low im, high re, high im)`` in ``dtype``."""
    n = _bit_count(size)
    low = _low_bits(size)
    lr, li = np.empty(1 << low, dtype), np.empty(1 << low, dtype)
    hr, hi = np.empty(size >> low, dtype), np.empty(size >> low, dtype)
    _product_table(fr, fi, 0, low, -1, False, lr, li)
    _product_table(fr, fi, low, n - low, -1, False, hr, hi)
    return lr, li, hr, hi


@njit(cache=True, fastmath=True)
def _product_planes(re, im, fr, fi):
    """The product state ``⊗ f_p`` into a row's planes (``fr, fi``: ``(n, 2)``, by bit
    position): one write per amplitude, where ``n`` one-wire gates on ``|0…0>`` take
    ``n`` passes. Amplitude ``h L + l`` is the high half's product at ``h`` times the
    low half's at ``l``."""
    low = _low_bits(re.shape[0])
    n_low = 1 << low
    lr, li, hr, hi = _product_halves(fr, fi, re.shape[0], re.dtype)
    for h in range(hr.shape[0]):
        base = h << low
        out_r, out_i = re[base : base + n_low], im[base : base + n_low]  # sliced: see _transitions
        xr, xi = hr[h], hi[h]
        for k in range(n_low):
            out_r[k] = xr * lr[k] - xi * li[k]
            out_i[k] = xr * li[k] + xi * lr[k]


@njit(cache=True, fastmath=True)
def _store(row, re, im):
    for idx in range(row.shape[0]):
        row[idx] = re[idx] + 1j * im[idx]


@njit(cache=True, fastmath=True)
def _locals(kinds, position_offsets, dtype):
    """Local amplitudes sized for the widest dense gate (numba checks no bounds)."""
    widest = 0
    for g in range(kinds.shape[0]):
        if kinds[g] == DENSE:
            widest = max(widest, position_offsets[g + 1] - position_offsets[g])
    return np.empty(1 << widest, dtype=dtype), np.empty(1 << widest, dtype=dtype)


@njit(cache=True, fastmath=True)
def _apply_planes(
    re, im, sr, si, r, kinds, counts, position_offsets, positions, value_offsets, real,
    imag, lr, li,
):  # fmt: skip
    """Every gate of an encoded sequence on one row held as planes ``re, im``; ``r``
    picks each gate's matrix (``r % K``). Permutations and rotations write into the
    spare planes ``sr, si``, which then trade places with ``re, im`` (no copy back):
    returns ``(re, im, sr, si)`` as they stand at the end."""
    size = re.shape[0]
    g = -1
    while g + 1 < kinds.shape[0]:
        g += 1
        lo = position_offsets[g]
        hi = position_offsets[g + 1]
        kind = kinds[g]
        if size > _CACHE_BLOCK and _one_wire_gate(kinds, position_offsets, g):
            end = g + 1
            while end < kinds.shape[0] and _one_wire_gate(kinds, position_offsets, end):
                end += 1
            if end - g > 1 or positions[lo] < _LOW_BITS:
                _one_wire_run(
                    re, im, r, g, end, counts, position_offsets, positions, value_offsets,
                    real, imag,
                )  # fmt: skip
                g = end - 1
                continue
        if kind == ROTATION:
            _rotate(re, sr, positions[lo])
            _rotate(im, si, positions[lo])
            re, im, sr, si = sr, si, re, im
            continue
        if kind == PERMUTATION:
            for idx in range(size):
                source = positions[lo + idx]
                sr[idx] = re[source]
                si[idx] = im[source]
            re, im, sr, si = sr, si, re, im
            continue
        if kind == AFFINE:
            _affine_gather(re, im, sr, si, positions[lo:hi])
            re, im, sr, si = sr, si, re, im
            continue
        k = hi - lo
        dim = 1 << k
        if kind == DIAGONAL:
            base = value_offsets[g] + (r % counts[g]) * dim
            _diagonal(re, im, real, imag, base, positions[lo:hi])
        elif k == 1:
            base = value_offsets[g] + (r % counts[g]) * 4
            _one_wire(re, im, real, imag, base, positions[lo])
        else:
            base = value_offsets[g] + (r % counts[g]) * dim * dim
            _dense(re, im, real, imag, base, positions[lo:hi], lr, li)
    return re, im, sr, si


@njit(cache=True, fastmath=True)
def _affine_gather(re, im, sr, si, tables):
    """``s[h L + l] = x[high[h] ^ low[l]]`` into the planes ``sr, si`` (``L = 2**(n //
    2)``; ``tables``: ``high``, then ``low``): an affine permutation's gather with no
    index over the row (8 MB per gather at 20 qubits; 1.5 against 2.6 ms per 20-qubit
    float32 row pair of planes)."""
    low = _low_bits(re.shape[0])
    n_low = 1 << low
    n_high = re.shape[0] >> low
    lows = tables[n_high:]
    for h in range(n_high):
        base = tables[h]
        out = h << low
        out_r, out_i = sr[out : out + n_low], si[out : out + n_low]  # sliced: see _transitions
        for j in range(n_low):
            source = base ^ lows[j]
            out_r[j] = re[source]
            out_i[j] = im[source]


@njit(cache=True, fastmath=True)
def _one_wire_gate(kinds, position_offsets, g):
    # runs take 2x2 matrices, as plans encode every one-wire gate; a diagonal runs alone
    return kinds[g] == DENSE and position_offsets[g + 1] - position_offsets[g] == 1


@njit(cache=True, fastmath=True)
def _one_wire_run(
    re, im, r, first, end, counts, position_offsets, positions, value_offsets, real, imag
):  # fmt: skip
    """Gates ``first .. end - 1``, each a 2x2 matrix, on a row larger than
    :data:`_CACHE_BLOCK`: two sweeps over the row instead of one per gate.

    Gates on bits inside a block run block by block, and gates on bits across blocks
    tile by tile (a tile is one run of amplitudes from every block, so both amplitudes
    of each pair lie in it), each block or tile taking all of its gates while it sits
    in the CPU cache: at 20 qubits 1.4x faster per gate than a pass per gate. Gates on
    the lowest :data:`_LOW_BITS` bits run in the block sweep too, through
    :func:`_low_gates`. Gates on different bits commute and a bit's gates keep their
    order, so the result is the sequence's.
    """
    size = re.shape[0]
    block = _CACHE_BLOCK
    run = _tile_run(size, block)
    low = 0
    for g in range(first, end):
        low += positions[position_offsets[g]] < _LOW_BITS
    lanes = np.empty((2, _LOW_CHUNK if low else 0), dtype=re.dtype)
    for tiles in (False, True):
        starts = range(0, block, run) if tiles else range(0, size, block)
        for start in starts:
            stop = start + block
            for g in range(first, end):
                position = positions[position_offsets[g]]
                if ((1 << position) >= block) != tiles or position < _LOW_BITS:
                    continue
                base = value_offsets[g] + (r % counts[g]) * 4
                if tiles:
                    _one_wire(re, im, real, imag, base, position, start, run, block)
                else:
                    _one_wire(re[start:stop], im[start:stop], real, imag, base, position)
            if low and not tiles:
                _low_gates(
                    re[start:stop], im[start:stop], r, first, end, counts, position_offsets,
                    positions, value_offsets, real, imag, lanes,
                )  # fmt: skip


#: Bits whose pairs lie closer than a vector: one-wire gates on them run in
#: :func:`_low_gates`, where each of the bits is a distant one.
_LOW_BITS = 3
#: Amplitudes :func:`_low_gates` transposes at a time: the chunk and its lanes, 16 KB
#: in single precision, stay in L1 (three gates on a 20-qubit row: 1.43 ms in chunks of
#: 2**10, 1.85 in chunks of 2**12, 5.1 in chunks of 2**13).
_LOW_CHUNK = 1 << 10


@njit(cache=True, fastmath=True)
def _low_gates(
    re, im, r, first, end, counts, position_offsets, positions, value_offsets, real, imag,
    lanes,
):  # fmt: skip
    """The gates among ``first .. end - 1`` on the lowest :data:`_LOW_BITS` bits, on a
    block: chunk by chunk, the chunk's bits are rotated into ``lanes``
    (:func:`_rotate`: each group of eight consecutive amplitudes goes to eight planes,
    the group's lowest bits becoming the top bits of the chunk), the gates run there on
    vectors, and the rotation is undone.

    Pairs on those bits are 1-4 amplitudes apart, which the compiler does not vectorise
    (8-12x slower per gate than on distant bits); rotating the row's bits to put them
    on top instead cost two more passes over the row (see ``plan.ROTATION_MAX_WIRES``).
    """
    chunk = lanes.shape[1]
    shift = _bit_count(chunk) - _LOW_BITS  # where the lowest bits sit in the lanes
    lr, li = lanes[0], lanes[1]
    for first_amplitude in range(0, re.shape[0], chunk):
        xr = re[first_amplitude : first_amplitude + chunk]
        xi = im[first_amplitude : first_amplitude + chunk]
        _rotate(xr, lr, _LOW_BITS)
        _rotate(xi, li, _LOW_BITS)
        for g in range(first, end):
            position = positions[position_offsets[g]]
            if position < _LOW_BITS:
                base = value_offsets[g] + (r % counts[g]) * 4
                _one_wire(lr, li, real, imag, base, position + shift)
        _rotate(lr, xr, shift)
        _rotate(li, xi, shift)


@njit(cache=True, fastmath=True)
def _rotate(plane, out, k):
    """``plane`` with its index bits rotated right by ``k``, into ``out``: the plane as
    a ``(size >> k, 2**k)`` matrix, transposed.

    Rotations by 3 write eight output streams at once (15 against 25-56 us per
    16-qubit plane), and rotations by ``n - 3`` read eight input streams (0.13 against
    0.45 ms per 20-qubit float32 plane). From :data:`_TILED_ROTATION_MIN_SIDE` rows
    and columns the matrix goes in ``8 x 8`` tiles: one output stream per column
    thrashes the cache there (float32 planes rotated by ``n // 2``: 0.042 against 0.058
    ms at 16 qubits, 0.82 against 3.25 ms at 20).
    """
    width = 1 << k
    rows = plane.shape[0] >> k
    if k == 3:  # eight output streams
        o0, o1, o2, o3, o4, o5, o6, o7 = _eighths(out)
        for c in range(rows):
            base = c * 8
            o0[c] = plane[base]
            o1[c] = plane[base + 1]
            o2[c] = plane[base + 2]
            o3[c] = plane[base + 3]
            o4[c] = plane[base + 4]
            o5[c] = plane[base + 5]
            o6[c] = plane[base + 6]
            o7[c] = plane[base + 7]
        return
    if rows == 8:  # undoes a rotation by 3: eight input streams
        i0, i1, i2, i3, i4, i5, i6, i7 = _eighths(plane)
        for j in range(width):
            base = j * 8
            out[base] = i0[j]
            out[base + 1] = i1[j]
            out[base + 2] = i2[j]
            out[base + 3] = i3[j]
            out[base + 4] = i4[j]
            out[base + 5] = i5[j]
            out[base + 6] = i6[j]
            out[base + 7] = i7[j]
        return
    if min(rows, width) >= _TILED_ROTATION_MIN_SIDE:
        tiles = width >> 3
        for t in range(tiles):
            j0 = t << 3
            for c0 in range(0, rows, 8):
                for b in range(8):
                    column = out[(j0 + b) * rows + c0 : (j0 + b) * rows + c0 + 8]
                    for a in range(8):
                        column[a] = plane[(c0 + a) * width + j0 + b]
        return
    matrix = plane.reshape(rows, width)
    for j in range(width):
        column = out[j * rows : (j + 1) * rows]
        for c in range(rows):
            column[c] = matrix[c, j]


@njit(cache=True)
def _eighths(plane):
    """``plane`` cut into eight equal consecutive slices."""
    part = plane.shape[0] >> 3
    return (
        plane[:part], plane[part : 2 * part], plane[2 * part : 3 * part],
        plane[3 * part : 4 * part], plane[4 * part : 5 * part], plane[5 * part : 6 * part],
        plane[6 * part : 7 * part], plane[7 * part :],
    )  # fmt: skip


#: Rows and columns from which :func:`_rotate` transposes in tiles.
_TILED_ROTATION_MIN_SIDE = 256


def adjoint_step(
    states, batch, kinds, counts, position_offsets, positions, value_offsets, real, imag,
    bits, off_diagonal, out, scratch=None,
):  # fmt: skip
    """One step of the adjoint sweep: undo gates on ψ and λ, then read transitions.

    ``states`` stacks the batch's states ψ (rows ``0 .. B-1``) over the adjoint states
    λ (row ``B + k B + r`` pairs with ψ row ``r``). Each ψ row and its λ rows get the
    encoded sequence while they sit in the CPU cache as planes, and then, per bit
    position ``bits[i]``, the ``2x2`` transition matrix
    ``out[j, i, a, b] = Σ conj(λ_j[k_a]) ψ[k_b]`` over index pairs ``k_0, k_1`` that
    differ only in that bit. ``<λ|O|ψ> = Σ O_ab out[j, i, a, b]`` for any operator ``O``
    on that wire. The off-diagonal entries cost one pass per bit and are computed where
    ``off_diagonal[i]``; the diagonal ones take one pass for all bits. ``scratch`` is
    :func:`apply_sequence`'s.
    """
    scratch = scratch or Scratch()
    size = states.shape[1]
    work = states.shape[0] * size * (kinds.shape[0] + bits.shape[0])
    threads = numba.get_num_threads()
    if work >= PARALLEL_MIN_WORK and batch < threads:
        # fewer circuits than threads (one wide circuit): ψ and each λ row undo their
        # gates on threads of their own, then the reads split over the threads (the
        # loads by amplitudes, the off-diagonal reads, a pass per bit, by bits)
        if kinds.shape[0]:
            apply_sequence(
                states, kinds, counts, position_offsets, positions, value_offsets, real,
                imag, scratch,
            )  # fmt: skip
        planes = scratch.planes(1, _READ_PLANES, size, real.dtype)[0]
        _reads_parallel(states, batch, bits, off_diagonal, out, threads, planes)
    elif work >= PARALLEL_MIN_WORK:
        _adjoint_rows_parallel(
            states, batch, kinds, counts, position_offsets, positions, value_offsets, real,
            imag, bits, off_diagonal, out,
            scratch.planes(min(threads, batch), _WORK_PLANES, size, real.dtype),
        )  # fmt: skip
    else:
        _adjoint_rows_serial(
            states, batch, kinds, counts, position_offsets, positions, value_offsets, real,
            imag, bits, off_diagonal, out, scratch.planes(1, _WORK_PLANES, size, real.dtype)[0],
        )  # fmt: skip


#: Up to this many amplitudes per circuit, :func:`adjoint_sweep` takes batches with
#: fewer circuits than threads too, a row pair per thread: splitting one row pair over
#: the threads step by step costs more than it saves there (one W1 circuit on two
#: cores: 167 against 326 us at 4 qubits, 1.0 against 1.6 ms at 12, 9.1 against 8.9
#: ms at 16 on half the CPU; at 22 qubits the split is 10% faster).
WHOLE_ROWS_MAX_SIZE = 1 << 16


def sweeps_whole_rows(batch: int, size: int) -> bool:
    """Whether :func:`adjoint_sweep` takes a batch of ``batch`` circuits of ``size``
    amplitudes: with fewer circuits than threads and wider rows than
    :data:`WHOLE_ROWS_MAX_SIZE`, :func:`adjoint_step` splits each row pair over the
    threads instead."""
    return batch >= numba.get_num_threads() or size <= WHOLE_ROWS_MAX_SIZE


def adjoint_sweep(
    psi, lam, kinds, counts, position_offsets, positions, value_offsets, real, imag,
    ranges, bit_offsets, bits, off_diagonal, out, scratch=None, start=None, deferred=None,
):  # fmt: skip
    """Every step of an adjoint sweep, row pair by row pair: :func:`adjoint_step`'s
    work for all steps while the pair stays in its planes.

    ``psi`` holds the final states, ``(B, 2**n)``, only read. ``lam`` is one adjoint
    state per circuit, ``(B, 2**n)`` and only read too, or ``(by_high, by_low)``: λ is
    then ψ times a diagonal that is a sum over the high and the low half of the index
    bits (:func:`scale_by_halves`; the adjoint state of ``<Z_i>`` cotangents), made in
    the planes from ψ's, with no λ array at all (256 MB at 20 qubits and batch 32, in
    complex64). Each pair is loaded once; step ``s`` undoes the gates
    ``ranges[s, 0] .. ranges[s, 1] - 1`` of the encoded sequence on both, then reads the
    transition matrices of ``bits[bit_offsets[s] : bit_offsets[s + 1]]`` (with
    ``off_diagonal`` alike) into ``out[r, bit_offsets[s] : bit_offsets[s + 1]]``.
    Nothing is written back: step by step, each step stored both rows and loaded them
    again (two trips to memory per row and step at 20 qubits), and ψ was copied first,
    to be undone in place.

    With ``start`` (:func:`apply_sequence`'s), ψ at the last step's reads is that
    product state: the last step undoes its gates on λ alone and reads from λ and the
    factors (:func:`_product_transitions`).

    ``deferred`` (``DeferredReads.arrays()``, with ``start``): the second-last step's
    reads are taken at the last step, from λ there (:func:`_deferred_transitions`), and
    ψ is not undone through that step. Like the encoded sequence, the arrays are checked
    where they are made (:func:`checked_deferred`), not on every call; without ``start``
    they are not used.
    """
    batch, size = psi.shape
    start_re, start_im = _start_factors(start, size)
    deferred = _NO_DEFERRAL if deferred is None else deferred
    threads = numba.get_num_threads()
    work = 2 * batch * size * (kinds.shape[0] + bits.shape[0])
    teams = min(threads, batch) if work >= PARALLEL_MIN_WORK else 1
    planes = (scratch or Scratch()).planes(teams, _WORK_PLANES, size, real.dtype)
    scaled = isinstance(lam, tuple)
    by_high, by_low = lam if scaled else (np.zeros((1, 1), real.dtype),) * 2
    args = (
        psi, psi if scaled else lam, scaled, by_high, by_low, kinds, counts,
        position_offsets, positions, value_offsets, real, imag, ranges, bit_offsets, bits,
        off_diagonal, out, planes, start_re, start_im, deferred,
    )  # fmt: skip
    if teams > 1:
        _sweep_rows_parallel(*args)
    else:
        _sweep_rows_serial(*args)


#: :func:`adjoint_sweep`'s ``deferred`` for a sweep that defers nothing.
_NO_DEFERRAL = (
    np.zeros((1, 2), dtype=np.int64),
    np.zeros((1, 2), dtype=np.int64),
    np.zeros((0, 4), dtype=np.int64),
    np.zeros((0, 4), dtype=np.int64),
    np.zeros(0, dtype=np.int64),
)


def checked_deferred(deferred, product_start: bool, ranges, bit_offsets, kinds) -> tuple:
    """``deferred``'s arrays (``DeferredReads.arrays()``), contiguous, checked against the
    sweep they serve (ranges, read offsets and gate kinds of its plan): the kernel checks
    no bounds. Raises ``ValueError`` where they do not fit."""
    arrays = tuple(np.ascontiguousarray(a, np.int64) for a in deferred)
    low_keys, high_keys, products, reads, undo_bits = arrays
    steps = ranges.shape[0]
    problem = None
    if not product_start or steps < 2:
        problem = "they need a product state at the last reads and two steps"
    elif reads.shape != (bit_offsets[steps - 1] - bit_offsets[steps - 2], 4) or not reads.size:
        problem = "one read per wire of the second-last step"
    elif kinds[ranges[-1, 1] - 1] != AFFINE or bit_offsets[steps] == bit_offsets[steps - 1]:
        problem = "the last step must read and end in an affine permutation"
    elif undo_bits.shape != (ranges[-1, 1] - 1 - ranges[-1, 0],):
        problem = "a bit for each gate of the last step before its permutation"
    elif low_keys.shape[1:] != (2,) or high_keys.shape[1:] != (2,) or products.shape[1:] != (4,):
        problem = "keys are (z, x) pairs and products four numbers"
    elif not (len(low_keys) and len(high_keys) and len(products)) or (
        low_keys[0].any() or high_keys[0].any() or products[0, 2:].any()
    ):
        problem = "f itself and its halves come first"
    else:
        sides = (len(low_keys), len(high_keys))
        if (
            (reads[:, :3].min() < 0 or reads[:, :3].max() >= len(products))
            or any(not 0 <= v < sides[t] for t, v in products[:, :2] if t in (0, 1))
            or not np.isin(products[:, 0], (0, 1)).all()
        ):
            problem = "an index is out of range"
    if problem:
        raise ValueError(f"deferred reads do not fit the sweep: {problem}")
    return arrays


@njit(parallel=True, cache=True, fastmath=True)
def _sweep_rows_parallel(
    psi, lam, scaled, by_high, by_low, kinds, counts, position_offsets, positions,
    value_offsets, real, imag, ranges, bit_offsets, bits, off_diagonal, out, planes,
    start_re, start_im, deferred,
):  # fmt: skip
    teams = planes.shape[0]
    for t in prange(teams):  # planes per thread (``planes[t]``), not per row
        sums, tile, which, lr, li = _adjoint_buffers(psi, kinds, position_offsets, real, bits)
        for r in range(t, psi.shape[0], teams):
            _sweep_row(
                psi, lam, scaled, by_high, by_low, r, kinds, counts, position_offsets,
                positions, value_offsets, real, imag, ranges, bit_offsets, bits,
                off_diagonal, out, planes[t], sums, tile, which, lr, li, start_re, start_im,
                deferred,
            )  # fmt: skip


@njit(cache=True, fastmath=True)
def _sweep_rows_serial(
    psi, lam, scaled, by_high, by_low, kinds, counts, position_offsets, positions,
    value_offsets, real, imag, ranges, bit_offsets, bits, off_diagonal, out, planes,
    start_re, start_im, deferred,
):  # fmt: skip
    sums, tile, which, lr, li = _adjoint_buffers(psi, kinds, position_offsets, real, bits)
    for r in range(psi.shape[0]):
        _sweep_row(
            psi, lam, scaled, by_high, by_low, r, kinds, counts, position_offsets,
            positions, value_offsets, real, imag, ranges, bit_offsets, bits, off_diagonal,
            out, planes[0], sums, tile, which, lr, li, start_re, start_im, deferred,
        )  # fmt: skip


@njit(cache=True, fastmath=True)
def _sweep_row(
    psi, lam, scaled, by_high, by_low, r, kinds, counts, position_offsets, positions,
    value_offsets, real, imag, ranges, bit_offsets, bits, off_diagonal, out, work, sums,
    tile, which, lr, li, start_re, start_im, deferred,
):  # fmt: skip
    pr, pi, sr, si, ar, ai = work[0], work[1], work[2], work[3], work[4], work[5]
    _load(psi[r], pr, pi)
    if scaled:
        _scale_planes(pr, pi, by_high[r], by_low[r], ar, ai)
    else:
        _load(lam[r], ar, ai)
    last = ranges.shape[0] - 1 if start_re.shape[0] else -1  # ψ is a product state there
    low_keys, high_keys, products, deferred_reads, undo_bits = deferred
    # the second-last step's reads wait for the last step (deferred_reads.py)
    waits = last - 1 if deferred_reads.shape[0] else -2
    for s in range(ranges.shape[0]):
        a, b = ranges[s, 0], ranges[s, 1]
        if b > a:  # the spares sr, si serve both rows
            if s != last and s != waits:
                pr, pi, sr, si = _apply_planes(
                    pr, pi, sr, si, r, kinds[a:b], counts[a:b], position_offsets[a : b + 1],
                    positions, value_offsets[a:b], real, imag, lr, li,
                )  # fmt: skip
            ar, ai, sr, si = _apply_planes(
                ar, ai, sr, si, r, kinds[a:b], counts[a:b], position_offsets[a : b + 1],
                positions, value_offsets[a:b], real, imag, lr, li,
            )  # fmt: skip
        lo, hi = bit_offsets[s], bit_offsets[s + 1]
        if hi == lo or s == waits:
            continue
        step_bits = bits[lo:hi]
        if s == last:
            f = r % start_re.shape[0]
            fr, fi = start_re[f], start_im[f]
            sums_by_high, sums_by_low = _product_transitions(
                ar, ai, fr, fi, step_bits, out[r, lo:hi], low_keys, high_keys
            )  # fmt: skip
            if waits >= 0:
                wlo, whi = bit_offsets[waits], bit_offsets[waits + 1]
                undo = _one_wire_products(
                    r, bits[wlo:whi], a, undo_bits, counts, value_offsets, real, imag
                )
                _deferred_transitions(
                    fr, fi, sums_by_high, sums_by_low, products, deferred_reads, undo,
                    out[r, wlo:whi],
                )  # fmt: skip
            continue
        off = _off_diagonal_reads(off_diagonal[lo:hi], which)
        _transitions(pr, pi, ar, ai, step_bits, off, out[r, lo:hi], sums, tile)


@njit(cache=True)
def _one_wire_products(r, bits, first, undo_bits, counts, value_offsets, real, imag):
    """Per bit of ``bits``, the product of the one-wire gates ``first + g`` on it
    (``undo_bits[g]``: their bits, -1 for none), as row ``r`` applies them (the identity
    where there are none)."""
    out = np.zeros((bits.shape[0], 2, 2), dtype=np.complex128)
    for i in range(bits.shape[0]):
        out[i, 0, 0] = out[i, 1, 1] = 1.0
        for k in range(undo_bits.shape[0]):
            if undo_bits[k] != bits[i]:
                continue
            g = first + k
            base = value_offsets[g] + (r % counts[g]) * 4
            m00, m01 = complex(real[base], imag[base]), complex(real[base + 1], imag[base + 1])
            m10 = complex(real[base + 2], imag[base + 2])
            m11 = complex(real[base + 3], imag[base + 3])
            p00, p01, p10, p11 = out[i, 0, 0], out[i, 0, 1], out[i, 1, 0], out[i, 1, 1]
            out[i, 0, 0] = m00 * p00 + m01 * p10
            out[i, 0, 1] = m00 * p01 + m01 * p11
            out[i, 1, 0] = m10 * p00 + m11 * p10
            out[i, 1, 1] = m10 * p01 + m11 * p11
    return out


@njit(cache=True, fastmath=True)
def _deferred_transitions(fr, fi, by_high, by_low, products, reads, undo, out):
    """The second-last step's transition matrices at the last step (deferred_reads.py):
    each product state's ``<λ|g>`` from the sums of λ against one of its halves
    (:func:`_product_sums`) and its other half, then per read ``M`` from them and
    ``out = Wᵀ M conj(W)``, ``W`` the one-wire gates undone on its bit in between
    (``undo``)."""
    n = fr.shape[0]
    low = n // 2
    n_low, n_high = 1 << low, 1 << (n - low)
    tr, ti = np.empty(max(n_low, n_high)), np.empty(max(n_low, n_high))  # float64
    values = np.empty(products.shape[0], dtype=np.complex128)
    for j in range(products.shape[0]):
        through, v, z, x = products[j, 0], products[j, 1], products[j, 2], products[j, 3]
        if through == 0:  # summed by high index: the high half's factors remain
            first, count, sr, si = low, n - low, by_high[v, 0], by_high[v, 1]
        else:
            first, count, sr, si = 0, low, by_low[v, 0], by_low[v, 1]
        _product_table(fr, fi, first, count, -1, True, tr, ti, z, x)
        acc_r = acc_i = 0.0
        for k in range(1 << count):
            acc_r += sr[k] * tr[k] - si[k] * ti[k]
            acc_i += sr[k] * ti[k] + si[k] * tr[k]
        values[j] = complex(acc_r, -acc_i)  # <λ|g>, conjugated back
    m = np.empty((2, 2), dtype=np.complex128)
    for i in range(reads.shape[0]):
        with_z, with_x, with_both, c = reads[i, 0], reads[i, 1], reads[i, 2], reads[i, 3]
        for a in range(2):
            sigma = 1.0 if a == c else -1.0
            m[a, a] = 0.5 * (values[0] + sigma * values[with_z])
            m[a, 1 - a] = 0.5 * (values[with_x] + sigma * values[with_both])
        w = undo[i]
        for a in range(2):
            for b in range(2):
                total = 0j
                for a2 in range(2):
                    for b2 in range(2):
                        total += w[a2, a] * m[a2, b2] * np.conj(w[b2, b])
                out[i, a, b] = total


@njit(cache=True, fastmath=True)
def _product_transitions(ar, ai, fr, fi, bits, out, low_keys, high_keys):
    """:func:`_transitions`'s reads where ψ is the product state ``⊗ f_p``
    (:func:`_product_planes`), from λ alone: ``out[i, a, b] = conj(c[a]) f_p[b]`` at
    ``p = bits[i]``, ``c[a]`` the sum of λ over indices with bit ``p`` equal to ``a``,
    each times the conjugated factors of its other bits.

    One pass over λ sums it against the conjugated products of both halves of the index
    bits (:func:`_product_sums`; the first keys, ``(0, 0)``, are ``f``'s own halves), by
    high half and by low half; each bit's two sums then come from its half's few
    partial sums. Returns the sums (:func:`_deferred_transitions` reads them too).
    """
    size = ar.shape[0]
    n = _bit_count(size)
    low = _low_bits(size)
    by_high, by_low = _product_sums(ar, ai, fr, fi, low_keys, high_keys, low)
    tr, ti = np.empty(size >> low), np.empty(size >> low)  # the other bits' products, float64
    for i in range(bits.shape[0]):
        p = bits[i]
        if p < low:
            first, count, sr, si, j = 0, low, by_low[0, 0], by_low[0, 1], p
        else:
            first, count, sr, si, j = low, n - low, by_high[0, 0], by_high[0, 1], p - low
        _product_table(fr, fi, first, count, p, True, tr, ti)
        c0r = c0i = c1r = c1i = 0.0
        for idx in range(1 << count):
            vr = sr[idx] * tr[idx] - si[idx] * ti[idx]
            vi = sr[idx] * ti[idx] + si[idx] * tr[idx]
            if (idx >> j) & 1:
                c1r += vr
                c1i += vi
            else:
                c0r += vr
                c0i += vi
        f0, f1 = complex(fr[p, 0], fi[p, 0]), complex(fr[p, 1], fi[p, 1])
        c0, c1 = complex(c0r, -c0i), complex(c1r, -c1i)  # conjugated
        out[i, 0, 0] = c0 * f0
        out[i, 0, 1] = c0 * f1
        out[i, 1, 0] = c1 * f0
        out[i, 1, 1] = c1 * f1
    return by_high, by_low


@njit(cache=True, fastmath=True)
def _product_sums(ar, ai, fr, fi, low_keys, high_keys, low):
    """One pass over λ (``ar, ai``, ``2**n`` amplitudes, index ``h L + l``, ``L =
    2**low``): ``by_high[v, :, h] = Σ_l λ[h L + l] conj(g_v(l))``, ``g_v`` the low half
    of the product of ``f``'s factors with ``low_keys[v]``'s ``Z`` and ``X``
    (:func:`_product_table`), and ``by_low[w, :, l] = Σ_h λ[h L + l] conj(g_w(h))`` for
    the high halves of ``high_keys`` (real and imaginary parts, in λ's precision; the
    rows are sliced: see :func:`_transitions`)."""
    size = ar.shape[0]
    n = _bit_count(size)
    n_low, n_high = 1 << low, size >> low
    lows = np.empty((low_keys.shape[0], 2, n_low), ar.dtype)
    for v in range(low_keys.shape[0]):
        z, x = low_keys[v, 0], low_keys[v, 1]
        _product_table(fr, fi, 0, low, -1, True, lows[v, 0], lows[v, 1], z, x)
    highs = np.empty((high_keys.shape[0], 2, n_high), ar.dtype)
    for w in range(high_keys.shape[0]):
        z, x = high_keys[w, 0], high_keys[w, 1]
        _product_table(fr, fi, low, n - low, -1, True, highs[w, 0], highs[w, 1], z, x)
    by_high = np.empty((low_keys.shape[0], 2, n_high), ar.dtype)
    by_low = np.zeros((high_keys.shape[0], 2, n_low), ar.dtype)
    for h in range(n_high):
        base = h << low
        x_r, x_i = ar[base : base + n_low], ai[base : base + n_low]
        for v in range(low_keys.shape[0]):
            tr, ti = lows[v, 0], lows[v, 1]
            acc_r = acc_i = x_r[0] * 0
            for k in range(n_low):
                acc_r += x_r[k] * tr[k] - x_i[k] * ti[k]
                acc_i += x_r[k] * ti[k] + x_i[k] * tr[k]
            by_high[v, 0, h] = acc_r
            by_high[v, 1, h] = acc_i
        for w in range(high_keys.shape[0]):
            wr, wi = highs[w, 0, h], highs[w, 1, h]
            o_r, o_i = by_low[w, 0], by_low[w, 1]
            for k in range(n_low):
                o_r[k] += x_r[k] * wr - x_i[k] * wi
                o_i[k] += x_r[k] * wi + x_i[k] * wr
    return by_high, by_low


@njit(cache=True, fastmath=True)
def _scale_planes(pr, pi, by_high, by_low, ar, ai):
    """``ar, ai`` = ``pr, pi`` times ``by_high[h] + by_low[l]`` at index ``h L + l``."""
    width = by_low.shape[0]
    for h in range(by_high.shape[0]):
        base = h * width
        sr, si = pr[base : base + width], pi[base : base + width]  # sliced: see _transitions
        tr, ti = ar[base : base + width], ai[base : base + width]
        for k in range(width):
            scale = by_high[h] + by_low[k]
            tr[k] = sr[k] * scale
            ti[k] = si[k] * scale


def product_reads(lam, batch, bits, out, start, scratch=None):
    """:func:`adjoint_step`'s reads where each ψ row is the product state of its factors
    (``start``: :func:`apply_sequence`'s; λ row ``j`` pairs with ψ row ``j % batch``):
    from the λ rows alone (:func:`_product_transitions`), rows in parallel."""
    start_re, start_im = _start_factors(start, lam.shape[1])
    rows, size = lam.shape
    teams = min(numba.get_num_threads(), rows) if rows * size >= PARALLEL_MIN_WORK else 1
    planes = (scratch or Scratch()).planes(teams, 2, size, np.finfo(lam.dtype).dtype)
    _product_reads_rows(lam, batch, bits, out, start_re, start_im, planes)


@njit(parallel=True, cache=True, fastmath=True)
def _product_reads_rows(lam, batch, bits, out, start_re, start_im, planes):
    teams = planes.shape[0]
    own = np.zeros((1, 2), dtype=np.int64)  # f's own halves
    for t in prange(teams):
        ar, ai = planes[t, 0], planes[t, 1]
        for j in range(t, lam.shape[0], teams):
            _load(lam[j], ar, ai)
            f = (j % batch) % start_re.shape[0]
            _product_transitions(ar, ai, start_re[f], start_im[f], bits, out[j], own, own)


def read_transitions(states, batch, bits, off_diagonal, out, scratch=None):
    """:func:`adjoint_step`'s reads alone, with no gates applied."""
    empty = np.zeros(0, np.int64)
    values = np.zeros(1, np.finfo(states.dtype).dtype)
    adjoint_step(
        states, batch, empty, empty, np.zeros(1, np.int64), empty, empty, values, values,
        bits, off_diagonal, out, scratch,
    )  # fmt: skip


@njit(parallel=True, cache=True, fastmath=True)
def _reads_parallel(states, batch, bits, off_diagonal, out, teams, planes):
    """:func:`adjoint_step`'s reads over ``teams`` threads for each row pair, in the
    ``(4, size)`` ``planes``: rows load by ranges of amplitudes, then one pass reads the
    diagonal entries and the off-diagonal ones split by bits."""
    size = states.shape[1]
    pr, pi, ar, ai = planes[0], planes[1], planes[2], planes[3]
    sums = np.empty((4, _sums_width(size)), planes.dtype)
    which = np.empty(bits.shape[0], dtype=np.int64)
    off = _off_diagonal_reads(off_diagonal, which)
    none = which[:0]
    for r in range(batch):
        for t in prange(teams):
            _load_part(states[r], pr, pi, t, teams)
        for j in range(batch + r, states.shape[0], batch):
            for t in prange(teams):
                _load_part(states[j], ar, ai, t, teams)
            _transitions(pr, pi, ar, ai, bits, none, out[j - batch], sums, sums[:, :0])
            for t in prange(teams):  # each team writes its own bits' entries
                _off_diagonals(pr, pi, ar, ai, bits, off[t::teams], out[j - batch])


@njit(cache=True, fastmath=True)
def _load_part(row, re, im, team, teams):
    """Team ``team``'s share of loading ``row`` into planes."""
    size = row.shape[0]
    for idx in range(team * size // teams, (team + 1) * size // teams):
        re[idx] = row[idx].real
        im[idx] = row[idx].imag


@njit(parallel=True, cache=True, fastmath=True)
def _adjoint_rows_parallel(
    states, batch, kinds, counts, position_offsets, positions, value_offsets, real, imag,
    bits, off_diagonal, out, planes,
):  # fmt: skip
    teams = planes.shape[0]
    for t in prange(teams):  # planes per thread (``planes[t]``), not per row
        sums, tile, which, lr, li = _adjoint_buffers(states, kinds, position_offsets, real, bits)
        for r in range(t, batch, teams):
            _adjoint_row(
                states, r, batch, kinds, counts, position_offsets, positions, value_offsets,
                real, imag, bits, off_diagonal, out, planes[t], sums, tile, which, lr, li,
            )  # fmt: skip


@njit(cache=True, fastmath=True)
def _adjoint_rows_serial(
    states, batch, kinds, counts, position_offsets, positions, value_offsets, real, imag,
    bits, off_diagonal, out, work,
):  # fmt: skip
    sums, tile, which, lr, li = _adjoint_buffers(states, kinds, position_offsets, real, bits)
    for r in range(batch):
        _adjoint_row(
            states, r, batch, kinds, counts, position_offsets, positions, value_offsets,
            real, imag, bits, off_diagonal, out, work, sums, tile, which, lr, li,
        )  # fmt: skip


@njit(cache=True, fastmath=True)
def _adjoint_buffers(states, kinds, position_offsets, real, bits):
    """Buffers for :func:`_adjoint_row`: partial sums of the diagonal reads, a tile's
    copy for :func:`_tile_reads` (from :data:`TILE_READS_MIN_SIZE` amplitudes; none
    below), lists of bits, and a dense gate's local amplitudes."""
    size = states.shape[1]
    sums = np.empty((4, _sums_width(size)), real.dtype)
    tile = np.empty((4, _tile_size(size) if size >= TILE_READS_MIN_SIZE else 0), real.dtype)
    which = np.empty(bits.shape[0], dtype=np.int64)
    lr, li = _locals(kinds, position_offsets, real.dtype)
    return sums, tile, which, lr, li


@njit(cache=True)
def _low_bits(size):
    """The index bits :func:`_transitions` sums over as its low half: ``n // 2``."""
    return _bit_count(size) // 2


@njit(cache=True)
def _sums_width(size):
    """Partial sums :func:`_transitions` keeps per half of the index bits: ``2**(n -
    n // 2)`` for the high half, the larger."""
    return size >> _low_bits(size)


#: Planes one row pair of :func:`adjoint_step` works in: ψ, λ and two spares.
_WORK_PLANES = 6
#: Planes :func:`_reads_parallel` reads one row pair in: ψ and λ.
_READ_PLANES = 4


@njit(cache=True, fastmath=True)
def _adjoint_row(
    states, r, batch, kinds, counts, position_offsets, positions, value_offsets, real, imag,
    bits, off_diagonal, out, work, sums, tile, which, lr, li,
):  # fmt: skip
    pr, pi, sr, si, ar, ai = work[0], work[1], work[2], work[3], work[4], work[5]
    _load(states[r], pr, pi)
    pr, pi, sr, si = _apply_planes(
        pr, pi, sr, si, r, kinds, counts, position_offsets, positions, value_offsets, real,
        imag, lr, li,
    )  # fmt: skip
    if kinds.shape[0]:
        _store(states[r], pr, pi)
    off = _off_diagonal_reads(off_diagonal, which)
    for j in range(batch + r, states.shape[0], batch):
        _load(states[j], ar, ai)
        ar, ai, sr, si = _apply_planes(
            ar, ai, sr, si, j, kinds, counts, position_offsets, positions, value_offsets,
            real, imag, lr, li,
        )  # fmt: skip
        if kinds.shape[0]:
            _store(states[j], ar, ai)
        if bits.shape[0]:
            _transitions(pr, pi, ar, ai, bits, off, out[j - batch], sums, tile)


@njit(cache=True, fastmath=True)
def _off_diagonal_reads(off_diagonal, which):
    """The reads (indices into ``off_diagonal``) whose off-diagonal entries are wanted,
    written into ``which`` (as long as ``off_diagonal``) and returned."""
    count = 0
    for i in range(off_diagonal.shape[0]):
        if off_diagonal[i]:
            which[count] = i
            count += 1
    return which[:count]


@njit(cache=True)
def _bit_count(size):
    """``n`` for a row of ``2**n`` amplitudes."""
    n = 0
    while (1 << n) < size:
        n += 1
    return n


@njit(cache=True, fastmath=True)
def _half_sums(sums, n_low, n_high):
    """Views of ``sums`` (``(4, _sums_width)``) for partial sums by the low half of the
    index bits (real, imaginary; zeroed: they accumulate) and by the high half (real,
    imaginary; each entry written once)."""
    low_r, low_i = sums[0, :n_low], sums[1, :n_low]
    low_r[:] = 0.0
    low_i[:] = 0.0
    return low_r, low_i, sums[2, :n_high], sums[3, :n_high]


@njit(cache=True, fastmath=True)
def _transitions(pr, pi, ar, ai, bits, off, out, sums, tile):
    """:func:`adjoint_step`'s reads for one pair of rows held as planes (ψ: ``pr, pi``;
    λ: ``ar, ai``), off-diagonal entries for the reads ``off``. With a ``tile`` large
    enough (:func:`_adjoint_buffers`'), the diagonal sums and the off-diagonal reads of
    bits across blocks come from :func:`_tile_reads`."""
    size = pr.shape[0]
    low = _low_bits(size)
    n_low = 1 << low
    n_high = size >> low
    # conj(λ) ψ summed by the low and by the high half of the index bits: every
    # diagonal entry is then a sum over one of them. Partial sums stay in the planes'
    # precision and the rows are sliced (an index ``base + k`` may be negative as far
    # as numba knows, and its wraparound check stops vectorisation: 5-10x slower)
    low_r, low_i, high_r, high_i = _half_sums(sums, n_low, n_high)
    if size > _CACHE_BLOCK and tile.shape[1] >= _tile_size(size):
        across = np.empty(off.shape[0], dtype=np.int64)
        within = np.empty(off.shape[0], dtype=np.int64)
        a = w = 0
        for m in range(off.shape[0]):
            if (1 << bits[off[m]]) >= _CACHE_BLOCK:
                across[a] = off[m]
                a += 1
            else:
                within[w] = off[m]
                w += 1
        across = across[:a]
        totals = np.zeros((a, 4))
        halves = (low_r, low_i, high_r, high_i)
        _tile_reads(pr, pi, ar, ai, bits, across, totals, low, halves, tile)
        off = within[:w]
    else:
        across = off[:0]
        totals = np.zeros((0, 4))
        for h in range(n_high):
            base = h << low
            a_r, a_i = ar[base : base + n_low], ai[base : base + n_low]
            p_r, p_i = pr[base : base + n_low], pi[base : base + n_low]
            acc_r = acc_i = low_r[0] * 0
            for k in range(n_low):
                vr = a_r[k] * p_r[k] + a_i[k] * p_i[k]
                vi = a_r[k] * p_i[k] - a_i[k] * p_r[k]
                acc_r += vr
                acc_i += vi
                low_r[k] += vr
                low_i[k] += vi
            high_r[h] = acc_r
            high_i[h] = acc_i
    total_r = total_i = 0.0  # the few totals in float64
    for h in range(n_high):
        total_r += high_r[h]
        total_i += high_i[h]
    total = complex(total_r, total_i)
    for i in range(bits.shape[0]):
        b = bits[i]
        ones_r = 0.0
        ones_i = 0.0
        if b < low:
            for k in range(n_low):
                if (k >> b) & 1:
                    ones_r += low_r[k]
                    ones_i += low_i[k]
        else:
            for h in range(n_high):
                if (h >> (b - low)) & 1:
                    ones_r += high_r[h]
                    ones_i += high_i[h]
        ones = complex(ones_r, ones_i)
        out[i, 0, 0] = total - ones
        out[i, 1, 1] = ones
        out[i, 0, 1] = 0j
        out[i, 1, 0] = 0j
    _write_off_diagonals(out, across, totals)
    _off_diagonals(pr, pi, ar, ai, bits, off, out)


@njit(cache=True, fastmath=True)
def _off_diagonals(pr, pi, ar, ai, bits, which, out):
    """The off-diagonal entries of ``out[i]`` for ``i`` in ``which``, of bit ``bits[i]``.

    Rows larger than :data:`_CACHE_BLOCK` amplitudes are read in two sweeps instead of
    one per bit: bits inside a block are read block by block, and bits across blocks
    tile by tile (a tile takes one run of amplitudes from every block, so the pairs of
    every such bit lie inside it). Each bit's pass then hits a block or tile in the CPU
    cache: at 20 qubits (4 MB planes) 0.44 against 0.62 ms per bit on one thread.

    Reading two bits per pass was tried: it halves the loads but spills registers, and
    was 1.4x slower at 16 qubits.
    """
    size = pr.shape[0]
    block = min(size, _CACHE_BLOCK)
    sub = min(block, _MASKED_READ_BLOCK)
    run = _tile_run(size, block)
    totals = np.zeros((which.shape[0], 4))
    for tiles in (False, True):
        starts = range(0, block, run) if tiles else range(0, size, block)
        for start in starts:
            if not tiles:  # bits below the sub-blocks' size: masked, sub-block by sub-block
                for first in range(start, start + block, sub):
                    last = first + sub
                    for m in range(which.shape[0]):
                        stride = 1 << bits[which[m]]
                        if stride < sub:
                            _masked_pair_sums(
                                pr[first:last], pi[first:last], ar[first:last],
                                ai[first:last], stride, totals[m],
                            )  # fmt: skip
            for m in range(which.shape[0]):
                stride = 1 << bits[which[m]]
                if (stride >= block) != tiles or stride < sub:
                    continue
                if tiles:
                    _off_diagonal(pr, pi, ar, ai, stride, totals[m], start, run, block)
                else:
                    stop = start + block
                    _off_diagonal(
                        pr[start:stop], pi[start:stop], ar[start:stop], ai[start:stop], stride,
                        totals[m],
                    )  # fmt: skip
    _write_off_diagonals(out, which, totals)


@njit(cache=True)
def _write_off_diagonals(out, which, totals):
    """``out[which[m]]``'s off-diagonal entries from ``totals[m]`` (real and imaginary
    parts of ``Σ conj(λ[k_0]) ψ[k_1]``, then of ``Σ conj(λ[k_1]) ψ[k_0]``)."""
    for m in range(which.shape[0]):
        out[which[m], 0, 1] = complex(totals[m, 0], totals[m, 1])
        out[which[m], 1, 0] = complex(totals[m, 2], totals[m, 3])


@njit(cache=True, fastmath=True)
def _tile_reads(pr, pi, ar, ai, bits, across, totals, low, halves, tile):
    """One sweep over a row pair wider than a cache block, tile by tile (the tiles of
    :func:`_off_diagonals`): each tile is copied into ``tile``, where its runs lie end
    to end; on the way its products ``conj(λ) ψ`` are summed by the low ``low`` index
    bits and by the others into ``halves`` (:func:`_half_sums`' views, the low ones
    zeroed: :func:`_transitions`' diagonal reads), and the off-diagonal sums of the bits
    across blocks (reads ``across``) come from the copy into ``totals``.

    A tile's runs lie a block apart in the row, so they compete for the same cache
    sets; read from the row, those bits took 3.0-3.2 ms per 20-qubit row pair on two
    threads, and 2.5 ms from a copy. The copy also takes the diagonal sums' pass over
    the row pair with it.
    """
    size = pr.shape[0]
    block = _CACHE_BLOCK
    run = _tile_run(size, block)
    count = size // block
    n_low = 1 << low
    piece = min(run, n_low)
    used = count * run
    tp, ti, ta, tb = tile[0, :used], tile[1, :used], tile[2, :used], tile[3, :used]
    low_r, low_i, high_r, high_i = halves
    high_r[:] = 0.0
    high_i[:] = 0.0
    for start in range(0, block, run):
        for h in range(count):
            for first in range(h * block + start, h * block + start + run, piece):
                at = h * run + first - h * block - start
                p_r, p_i = pr[first : first + piece], pi[first : first + piece]
                a_r, a_i = ar[first : first + piece], ai[first : first + piece]
                c_pr, c_pi = tp[at : at + piece], ti[at : at + piece]
                c_ar, c_ai = ta[at : at + piece], tb[at : at + piece]
                k0 = first & (n_low - 1)
                l_r, l_i = low_r[k0 : k0 + piece], low_i[k0 : k0 + piece]
                acc_r = acc_i = low_r[0] * 0
                for k in range(piece):
                    c_pr[k] = p_r[k]
                    c_pi[k] = p_i[k]
                    c_ar[k] = a_r[k]
                    c_ai[k] = a_i[k]
                    vr = a_r[k] * p_r[k] + a_i[k] * p_i[k]
                    vi = a_r[k] * p_i[k] - a_i[k] * p_r[k]
                    acc_r += vr
                    acc_i += vi
                    l_r[k] += vr
                    l_i[k] += vi
                high_r[first >> low] += acc_r
                high_i[first >> low] += acc_i
        for m in range(across.shape[0]):
            stride = (1 << bits[across[m]]) // block * run  # the bit's stride in the copy
            _off_diagonal(tp, ti, ta, tb, stride, totals[m])


#: From this stride the pairs of a bit are read block by block (contiguous, vectorised);
#: below it, lane by lane over strided views.
_BLOCK_STRIDE = 8

#: Bits pairing amplitudes closer than this are read by :func:`_masked_pair_sums`, in
#: sub-blocks this long (4 planes of one stay in L1 in single precision).
_MASKED_READ_BLOCK = 1 << 10


@njit(cache=True, fastmath=True)
def _masked_pair_sums(pr, pi, ar, ai, stride, total):
    """:func:`_pair_sums` of every pair ``(k, k + stride)`` with that bit of ``k`` clear
    in a sub-block: one vector loop over the whole sub-block, the other half of the
    products multiplied by zero, where runs of ``stride`` pairs each cost loop overhead
    and a horizontal sum. Ten bits below 2**10 at 20 qubits in single precision: 4.1
    ms per row pair, against 8.2 to rotate copies of both rows and read there."""
    count = pr.shape[0] - stride
    p1r, p1i, a1r, a1i = pr[stride:], pi[stride:], ar[stride:], ai[stride:]
    zero = pr[0] * 0
    one = zero + 1
    c01r = c01i = c10r = c10i = zero
    for k in range(count):
        m = one if (k & stride) == 0 else zero
        c01r += m * (ar[k] * p1r[k] + ai[k] * p1i[k])
        c01i += m * (ar[k] * p1i[k] - ai[k] * p1r[k])
        c10r += m * (a1r[k] * pr[k] + a1i[k] * pi[k])
        c10i += m * (a1r[k] * pi[k] - a1i[k] * pr[k])
    total[0] += c01r
    total[1] += c01i
    total[2] += c10r
    total[3] += c10i


@njit(cache=True)
def _tile_run(size, block):
    """Amplitudes a tile takes from each block: the tile as large as a block, but runs
    of at least 512 (shorter runs cost more in loop overhead than the cache saves: at
    24 qubits, runs of 64 made one-wire gates 1.4x and reads 1.2x slower)."""
    return max(block // (size // block), 512)


#: From this many amplitudes per row, :func:`_transitions` reads through
#: :func:`_tile_reads`. The sweep of W1's engine step (``bench_adjoint.py
#: --compare-to``): 1.08x at 19 qubits, 1.03-1.09x at 20, 1.06x at 22, where a row
#: pair's planes leave the shared cache; 0.87x at 18, where they stay in it.
TILE_READS_MIN_SIZE = 1 << 19


@njit(cache=True)
def _tile_size(size):
    """Amplitudes in a tile of a row of ``size`` (more than :data:`_CACHE_BLOCK`): a run
    from every block (a block's worth; more from 23 qubits, where runs stay 512 long)."""
    return (size // _CACHE_BLOCK) * _tile_run(size, _CACHE_BLOCK)


#: Rows of more amplitudes than ``2**CACHE_BLOCK_BITS`` take runs of one-wire gates,
#: and read their off-diagonal entries, block by block (:func:`_one_wire_run`,
#: :func:`_off_diagonals`): four planes of a block, 512 KB in complex64, stay in L2.
CACHE_BLOCK_BITS = 15
_CACHE_BLOCK = 1 << CACHE_BLOCK_BITS


@njit(cache=True, fastmath=True)
def _off_diagonal(pr, pi, ar, ai, stride, total, offset=0, run=0, step=0):
    """Add ``Σ conj(λ[k_0]) ψ[k_1]`` and ``Σ conj(λ[k_1]) ψ[k_0]`` over the index pairs
    that differ in the bit of ``stride`` to ``total`` (real and imaginary parts; float64
    totals of partial sums in the planes' precision: the compiler vectorises those).
    ``offset, run, step`` pick pairs as for :func:`_one_wire`."""
    size = pr.shape[0]
    if run == 0:
        run = step = stride
    if stride >= _BLOCK_STRIDE:
        for start in range(0, size, 2 * stride):
            for lo in range(start + offset, start + stride, step):
                hi = lo + stride
                _pair_sums(
                    ar[lo : lo + run], ai[lo : lo + run], pr[lo : lo + run],
                    pi[lo : lo + run], ar[hi : hi + run], ai[hi : hi + run],
                    pr[hi : hi + run], pi[hi : hi + run], total,
                )  # fmt: skip
    else:
        step = 2 * stride
        for lane in range(stride):
            mid = lane + stride
            _pair_sums(
                ar[lane::step], ai[lane::step], pr[lane::step], pi[lane::step],
                ar[mid::step], ai[mid::step], pr[mid::step], pi[mid::step], total,
            )  # fmt: skip


@njit(cache=True, fastmath=True)
def _pair_sums(a0r, a0i, p0r, p0i, a1r, a1i, p1r, p1i, total):
    c01r = c01i = c10r = c10i = p0r[0] * 0
    for j in range(a0r.shape[0]):
        c01r += a0r[j] * p1r[j] + a0i[j] * p1i[j]
        c01i += a0r[j] * p1i[j] - a0i[j] * p1r[j]
        c10r += a1r[j] * p0r[j] + a1i[j] * p0i[j]
        c10i += a1r[j] * p0i[j] - a1i[j] * p0r[j]
    total[0] += c01r
    total[1] += c01i
    total[2] += c10r
    total[3] += c10i


@njit(cache=True)
def assemble(src, fused, members, copies, real, imag):
    """Write the matrices of an encoded sequence from the gates' values in ``src``.

    ``src`` holds every gate's matrices or diagonals, flattened; an entry is read
    at ``offset + row * stride`` (``stride`` 0 when the batch shares it).

    Parameters
    ----------
    fused : (F, 4) int
        Runs of one-wire gates multiplied into one ``2x2`` matrix per row:
        ``(output offset, rows, first member, end of members)``.
    members : (M, 4) int
        ``(offset, stride, diagonal, inverse)`` per member, in the order applied.
    copies : (C, 7) int
        Other gates: ``(output offset, rows, offset, stride, dim, diagonal, inverse)``.
    real, imag : float arrays
        The encoded sequence's values, written in place.
    """
    for f in range(fused.shape[0]):
        out, rows, start, stop = fused[f, 0], fused[f, 1], fused[f, 2], fused[f, 3]
        for r in range(rows):
            a00, a01, a10, a11 = 1.0 + 0.0j, 0.0j, 0.0j, 1.0 + 0.0j
            for m in range(start, stop):
                base = members[m, 0] + r * members[m, 1]
                inverse = members[m, 3] != 0
                if members[m, 2]:  # diagonal
                    d0, d1 = src[base], src[base + 1]
                    if inverse:
                        d0, d1 = np.conj(d0), np.conj(d1)
                    a00, a01, a10, a11 = d0 * a00, d0 * a01, d1 * a10, d1 * a11
                    continue
                m00, m01, m10, m11 = src[base], src[base + 1], src[base + 2], src[base + 3]
                if inverse:
                    m00, m01, m10, m11 = np.conj(m00), np.conj(m10), np.conj(m01), np.conj(m11)
                a00, a01, a10, a11 = (
                    m00 * a00 + m01 * a10,
                    m00 * a01 + m01 * a11,
                    m10 * a00 + m11 * a10,
                    m10 * a01 + m11 * a11,
                )
            o = out + 4 * r
            real[o], imag[o] = a00.real, a00.imag
            real[o + 1], imag[o + 1] = a01.real, a01.imag
            real[o + 2], imag[o + 2] = a10.real, a10.imag
            real[o + 3], imag[o + 3] = a11.real, a11.imag
    for c in range(copies.shape[0]):
        out, rows, offset, stride = copies[c, 0], copies[c, 1], copies[c, 2], copies[c, 3]
        dim, diagonal, inverse = copies[c, 4], copies[c, 5] != 0, copies[c, 6] != 0
        block = dim if diagonal else dim * dim
        for r in range(rows):
            base = offset + r * stride
            o = out + r * block
            for i in range(block):
                j = i
                if inverse and not diagonal:  # conjugate transpose
                    j = (i % dim) * dim + i // dim
                v = src[base + j]
                if inverse:
                    v = np.conj(v)
                real[o + i], imag[o + i] = v.real, v.imag


def probability_halves(states, low_bits):
    """``|ψ|²`` of every row summed over its low ``low_bits`` index bits and over the
    others: ``(rows, 2**(n - low_bits))`` and ``(rows, 2**low_bits)`` float64, in one
    pass over the states (partial sums in their precision, as the adjoint reads keep)."""
    rows, size = states.shape
    width = 1 << low_bits
    by_high = np.empty((rows, size // width))
    by_low = np.empty((rows, width))
    if states.size >= PARALLEL_MIN_WORK:
        _probability_halves_parallel(states, by_high, by_low)
    else:
        _probability_halves_serial(states, by_high, by_low)
    return by_high, by_low


@njit(cache=True, fastmath=True, parallel=True)
def _probability_halves_parallel(states, by_high, by_low):
    for r in prange(states.shape[0]):
        _probability_halves_row(states[r], by_high[r], by_low[r])


@njit(cache=True, fastmath=True)
def _probability_halves_serial(states, by_high, by_low):
    for r in range(states.shape[0]):
        _probability_halves_row(states[r], by_high[r], by_low[r])


@njit(cache=True, fastmath=True)
def _probability_halves_row(row, by_high, by_low):
    width = by_low.shape[0]
    lows = np.zeros(width, dtype=row.real.dtype)
    for h in range(by_high.shape[0]):
        base = h * width
        segment = row[base : base + width]  # sliced: see _transitions
        total = lows[0] * 0
        for k in range(width):
            x = segment[k]
            p = x.real * x.real + x.imag * x.imag
            total += p
            lows[k] += p
        by_high[h] = total
    for k in range(width):
        by_low[k] = lows[k]


def scale_by_halves(states, by_high, by_low, out):
    """``out[r, h L + l] = states[r, h L + l] * (by_high[r, h] + by_low[r, l])``, ``L``
    the width of ``by_low``: a diagonal that is a sum over the high and the low half of
    the index bits (the adjoint state of ``<Z_i>`` cotangents), in one pass."""
    if states.size >= PARALLEL_MIN_WORK:
        _scale_rows_parallel(states, by_high, by_low, out)
    else:
        _scale_rows_serial(states, by_high, by_low, out)


@njit(cache=True, fastmath=True, parallel=True)
def _scale_rows_parallel(states, by_high, by_low, out):
    for r in prange(states.shape[0]):
        _scale_row(states[r], by_high[r], by_low[r], out[r])


@njit(cache=True, fastmath=True)
def _scale_rows_serial(states, by_high, by_low, out):
    for r in range(states.shape[0]):
        _scale_row(states[r], by_high[r], by_low[r], out[r])


@njit(cache=True, fastmath=True)
def _scale_row(row, by_high, by_low, out):
    width = by_low.shape[0]
    for h in range(by_high.shape[0]):
        base = h * width
        source, target = row[base : base + width], out[base : base + width]  # see _transitions
        for k in range(width):
            target[k] = source[k] * (by_high[h] + by_low[k])


@njit(cache=True)
def permutation_gather(inverse, shifts, size):
    """Gather indices over ``size`` basis states for a permutation of a few bits.

    ``shifts[p]`` is the bit position of the gate's ``p``-th wire (its most significant
    local bit first); ``inverse[j]`` is the local basis state that the gate sends to
    ``j``. One pass, where numpy's whole-array bit arithmetic took ~15 (45 ms per
    gate at 20 qubits).
    """
    k = shifts.shape[0]
    clear = 0
    for p in range(k):
        clear |= 1 << shifts[p]
    clear = ~clear
    out = np.empty(size, dtype=np.int64)
    for i in range(size):
        local = 0
        for p in range(k):
            local = (local << 1) | ((i >> shifts[p]) & 1)
        source = inverse[local]
        index = i & clear
        for p in range(k):
            index |= ((source >> (k - 1 - p)) & 1) << shifts[p]
        out[i] = index
    return out
