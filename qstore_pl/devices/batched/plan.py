"""Gate sequences compiled once per circuit structure, filled per call.

Which gates fuse into which array operation, and every encoded array the row kernel
reads except the matrix values, depend only on the circuit's structure and on which
gates carry one set of parameters per circuit (the *pattern*). A :class:`Layout` fixes,
for one program, pattern and batch size, where each gate's matrices sit in one flat
source array; a :class:`SequencePlan` is an encoded gate sequence (the forward pass,
or every step of the backward sweep) whose values one compiled call
(:func:`~qstore_pl.devices.batched.jit_kernels.assemble`) writes from that source.
Per call, Python then only gathers the parameters, one array per gate kind, and
builds the matrices of each kind in one vectorised call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from qstore_pl.devices.batched import jit_kernels
from qstore_pl.devices.batched.gate_matrices import DENSE, DIAGONAL
from qstore_pl.devices.batched.kernel import check_width
from qstore_pl.devices.batched.permutations import Affine, Gather, chain
from qstore_pl.devices.batched.program import (
    BoundProgram,
    GateTemplate,
    Program,
    _check_finite,
)
from qstore_pl.support.bounded_cache import BoundedCache

#: What a layout's plan cache holds: a compiled plan, or a tuple that contains one.
_Plan = TypeVar("_Plan")


@dataclass(frozen=True)
class Source:
    """Where one gate's values sit in the flat source array.

    Row ``r`` of the batch reads ``dim`` (diagonal) or ``dim * dim`` (matrix) values
    from ``offset + r * stride``; ``stride`` is 0 when the batch shares them.
    """

    offset: int
    stride: int
    dim: int
    diagonal: bool


@dataclass(frozen=True)
class Element:
    """One gate of a sequence: a permutation (``gather``) or values at ``source``."""

    wires: tuple[int, ...]
    source: Source | None = None
    gather: Gather | None = None
    inverse: bool = False

    @property
    def fusable(self) -> bool:
        """A one-wire matrix or diagonal: multiplied into its neighbours."""
        return self.gather is None and len(self.wires) == 1


@dataclass
class _Group:
    """Gates whose matrices one call builds: one builder, or one generic gate."""

    positions: list[int]
    #: angle array -> matrices, or None: the gate's own method
    builder: Callable[[np.ndarray], np.ndarray] | None
    per_row: bool
    offset: int = 0  # in the source array, after the constants


def _builder(template: GateTemplate):
    if template.num_params != 1 or not template.class_matrix:
        return None
    return (DIAGONAL if template.kind == "diag" else DENSE).get(template.name)


class Layout:
    """Where every gate's values sit, for one program, pattern and batch size.

    Parameters
    ----------
    program : Program
    per_row : tuple[bool, ...]
        Per gate: whether each circuit has its own parameters.
    batch : int
        Circuits in the batch.
    """

    def __init__(self, program: Program, per_row: tuple[bool, ...], batch: int):
        self.program = program
        self.batch = batch
        constants, const_sources = program_constants(program)
        self.constants = constants
        groups: dict[tuple, _Group] = {}
        generic: list[_Group] = []
        for p, t in enumerate(program.gates):
            if t.num_params == 0:
                continue
            build = _builder(t)
            if build is None:
                generic.append(_Group([p], None, per_row[p]))
            else:
                key = (t.name, t.kind, per_row[p])
                groups.setdefault(key, _Group([], build, per_row[p])).positions.append(p)
        self.groups = list(groups.values()) + generic
        self.sources: list[Source | None] = [None] * len(program.gates)
        for p, src in const_sources.items():
            self.sources[p] = src
        offset = constants.size
        for group in self.groups:
            group.offset = offset
            rows = batch if group.per_row else 1
            for p in group.positions:
                t = program.gates[p]
                dim = 2 ** len(t.wires)
                diagonal = t.kind == "diag"
                block = dim if diagonal else dim * dim
                self.sources[p] = Source(offset, block if group.per_row else 0, dim, diagonal)
                offset += rows * block
        self.size = offset
        self._plans: dict = {}

    def values(self, bound: BoundProgram) -> np.ndarray:
        """The flat source array for ``bound``: constants, then each group's matrices."""
        parts = [self.constants]
        program = self.program
        for group in self.groups:
            if group.builder is None:
                (p,) = group.positions
                value = bound.gates[p].array().value
            else:
                angles = _angles(bound, group)
                if not np.all(np.isfinite(angles)):
                    for p in group.positions:
                        t = program.gates[p]
                        _check_finite(bound.column(t.index, 0), t)
                value = group.builder(angles)
            parts.append(np.ravel(value))
        values = np.concatenate(parts).astype(complex, copy=False)
        if values.size != self.size:  # the plans index this array without bounds checks
            raise ValueError(
                f"gate values: {values.size} built, the layout expects {self.size}; a gate's "
                "matrix has an unexpected shape"
            )
        return values

    def plan(self, key: Hashable, build: Callable[[Layout], _Plan]) -> _Plan:
        """The plan named ``key``, compiled by ``build(layout)`` on first use."""
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build(self)
        return plan

    def element(self, p: int, inverse: bool = False) -> Element:
        """Gate ``p`` (or its adjoint) as a sequence element."""
        t = self.program.gates[p]
        if t.kind == "perm":
            gather = t.inverse_perm.value if inverse else t.fixed_perm
            return Element(t.wires, gather=gather)
        return Element(t.wires, self.sources[p], inverse=inverse)


def _angles(bound: BoundProgram, group: _Group) -> np.ndarray:
    """The group's parameters: ``(m,)`` shared, ``(m, B)`` per circuit."""
    program = bound.program
    gates = program.gates
    if len(bound.parameters) == 1:
        data = bound.parameters[0].data
        slot = program.slot
        return np.array([data[slot[gates[p].index]][0] for p in group.positions], dtype=float)
    return np.array([bound.column(gates[p].index, 0) for p in group.positions], dtype=float)


def program_constants(program: Program) -> tuple[np.ndarray, dict[int, Source]]:
    """Values of the fixed gates, computed once per program."""
    cached = program.__dict__.get("_constants")
    if cached is None:
        parts, sources, offset = [], {}, 0
        for p, t in enumerate(program.gates):
            if t.num_params or t.kind == "perm":
                continue
            diagonal = t.kind == "diag"
            value = np.asarray(t.fixed_diag if diagonal else t.fixed_matrix, complex)
            sources[p] = Source(offset, 0, 2 ** len(t.wires), diagonal)
            parts.append(value.ravel())
            offset += value.size
        constants = np.concatenate(parts) if parts else np.zeros(0, complex)
        cached = program.__dict__["_constants"] = (constants, sources)
    return cached


class SequencePlan:
    """Encoded gate sequences (one or several steps) with their value assembly.

    Parameters
    ----------
    steps : sequence of sequences of Element
        Each step is applied by one kernel call; all steps share one value array.
    n : int
        Number of wires.
    batch : int
        Circuits in the batch (rows of per-circuit matrices).
    """

    def __init__(self, steps: Sequence[Sequence[Element]], n: int, batch: int):
        kinds: list[int] = []
        counts: list[int] = []
        position_offsets = [0]
        positions: list[np.ndarray] = []
        value_offsets: list[int] = []
        fused: list[tuple[int, ...]] = []
        members: list[tuple[int, int, bool, bool]] = []
        copies: list[tuple[int, ...]] = []
        self.ranges: list[tuple[int, int]] = []
        offset = 0
        for elements in steps:
            first = len(kinds)
            for placed in _place(_fuse(elements), n):
                what, item, bits = placed.kind, placed.item, placed.bits
                if what == "rotate":
                    kinds.append(jit_kernels.ROTATION)
                    counts.append(1)
                    positions.append(np.array([item], dtype=np.int64))
                    value_offsets.append(offset)
                elif what == "perm":
                    affine = isinstance(item, Affine)
                    kinds.append(jit_kernels.AFFINE if affine else jit_kernels.PERMUTATION)
                    counts.append(1)
                    gather = np.concatenate(item.tables()) if affine else item
                    positions.append(np.asarray(gather, dtype=np.int64))
                    value_offsets.append(offset)
                elif what == "fused":  # one-wire gates multiplied together
                    rows = batch if any(e.source.stride for e in item) else 1
                    kinds.append(jit_kernels.DENSE)
                    counts.append(rows)
                    positions.append(bits)
                    value_offsets.append(offset)
                    fused.append((offset, rows, len(members), len(members) + len(item)))
                    for e in item:
                        src = e.source
                        members.append((src.offset, src.stride, src.diagonal, e.inverse))
                    offset += 4 * rows
                else:  # a gate on several wires
                    src = item.source
                    rows = batch if src.stride else 1
                    kinds.append(jit_kernels.DIAGONAL if src.diagonal else jit_kernels.DENSE)
                    counts.append(rows)
                    positions.append(bits)
                    value_offsets.append(offset)
                    block = src.dim if src.diagonal else src.dim**2
                    copies.append(
                        (offset, rows, src.offset, src.stride, src.dim, src.diagonal, item.inverse)
                    )
                    offset += rows * block
                position_offsets.append(position_offsets[-1] + positions[-1].shape[0])
            self.ranges.append((first, len(kinds)))
        self.size = max(offset, 1)
        arrays = [np.array(v, dtype=np.int64) for v in (kinds, counts, position_offsets)]
        kind_array, count_array, position_offset_array = arrays
        flat_positions = np.concatenate(positions) if positions else np.zeros(0, np.int64)
        value_offset_array = np.array(value_offsets, dtype=np.int64)
        #: per step: the structure arguments of ``apply_sequence`` (before the values)
        self.structure = []
        for a, b in self.ranges:
            step = (
                kind_array[a:b],
                count_array[a:b],
                position_offset_array[a : b + 1],
                flat_positions,
            )
            self.structure.append((*step, value_offset_array[a:b]))
        #: every step's structure arguments at once, and each step's range of gates
        self.encoded = (
            kind_array,
            count_array,
            position_offset_array,
            flat_positions,
            value_offset_array,
        )
        self.step_ranges = np.array(self.ranges, dtype=np.int64).reshape(-1, 2)
        self._fused = np.array(fused, dtype=np.int64).reshape(-1, 4)
        self._members = np.array(members, dtype=np.int64).reshape(-1, 4)
        self._copies = np.array(copies, dtype=np.int64).reshape(-1, 7)
        self.n = n
        jit_kernels.check_sequence(
            n,
            kind_array,
            count_array,
            position_offset_array,
            flat_positions,
            value_offset_array,
            self.size,
        )
        self._source_size = _source_extent(self._fused, self._members, self._copies)

    def values(self, source: np.ndarray, real_dtype) -> tuple[np.ndarray, np.ndarray]:
        """Real and imaginary parts of every step's matrices, from the layout's source."""
        if source.ndim != 1 or source.size < self._source_size:
            raise ValueError(
                f"gate values: {source.size} given, the plan reads {self._source_size}"
            )
        real = np.empty(self.size, dtype=real_dtype)
        imag = np.empty(self.size, dtype=real_dtype)
        jit_kernels.assemble(source, self._fused, self._members, self._copies, real, imag)
        return real, imag

    def apply(
        self,
        states: np.ndarray,
        step: int,
        real,
        imag,
        start: tuple[np.ndarray, np.ndarray] | None = None,
        scratch: jit_kernels.Scratch | None = None,
    ) -> np.ndarray:
        """Apply step ``step`` to every row of ``states`` in place; with ``start``
        (:func:`jit_kernels.apply_sequence`'s) to the product states it names instead of
        the rows' contents."""
        a, b = self.ranges[step]
        if b > a or start is not None:
            check_width(states, self.n)
            jit_kernels.apply_sequence(
                states, *self.structure[step], real, imag, scratch, start=start
            )
        return states

    def adjoint_step(
        self,
        states: np.ndarray,
        step: int,
        real,
        imag,
        batch: int,
        bits,
        off,
        out,
        scratch: jit_kernels.Scratch | None = None,
    ) -> None:
        """Apply step ``step`` to stacked ψ and λ rows, then read the transition
        matrices at ``bits`` into ``out`` (:func:`jit_kernels.adjoint_step`; the steps
        of one sweep share ``scratch``)."""
        check_width(states, self.n)
        jit_kernels.adjoint_step(
            states, batch, *self.structure[step], real, imag, bits, off, out, scratch
        )

    def adjoint_sweep(
        self,
        psi: np.ndarray,
        lam: np.ndarray | tuple[np.ndarray, np.ndarray],
        real,
        imag,
        reads: tuple[np.ndarray, np.ndarray, np.ndarray],
        out: np.ndarray,
        scratch: jit_kernels.Scratch | None = None,
        start: tuple[np.ndarray, np.ndarray] | None = None,
        deferred: tuple[np.ndarray, ...] | None = None,
    ) -> None:
        """Every step on each pair of a ψ row and its λ row, reading after step ``s``
        the transition matrices of ``bits[offsets[s] : offsets[s + 1]]`` (``reads`` is
        ``(offsets, bits, off)``) into ``out`` (:func:`jit_kernels.adjoint_sweep`;
        ``start``: the product state ψ is at the last step's reads; ``deferred``: the
        second-last step's reads taken at the last, ``DeferredReads.arrays()``).

        ``lam`` holds the λ rows, or is ``(by_high, by_low)``: λ is ψ scaled by their
        sums (``(B, 2**(n // 2))`` and ``(B, 2**(n - n // 2))``, in ``real``'s dtype).
        """
        check_width(psi, self.n)
        rows = psi.shape[0]
        offsets, bits, off = reads
        if isinstance(lam, tuple):
            high = 1 << (self.n // 2)
            shapes = ((rows, high), (rows, psi.shape[1] // high))
            if tuple(a.shape for a in lam) != shapes or any(a.dtype != real.dtype for a in lam):
                raise ValueError(f"λ's halves must be {real.dtype} arrays of shapes {shapes}")
            lam = (np.ascontiguousarray(lam[0]), np.ascontiguousarray(lam[1]))
        else:
            check_width(lam, self.n)
            if lam.shape != psi.shape:
                raise ValueError(f"{rows} ψ rows take as many λ rows, not {lam.shape[0]}")
        if out.shape != (rows, bits.size, 2, 2):
            raise ValueError(f"room for {rows} x {bits.size} reads, not {out.shape}")
        jit_kernels.adjoint_sweep(
            psi, lam, *self.encoded, real, imag, self.step_ranges, offsets, bits, off, out,
            scratch, start, deferred,
        )  # fmt: skip


def _source_extent(fused: np.ndarray, members: np.ndarray, copies: np.ndarray) -> int:
    """How many source values :func:`jit_kernels.assemble` reads at most."""
    extent = 0
    for _, rows, start, stop in fused:
        for offset, stride, diagonal, _ in members[start:stop]:
            extent = max(extent, offset + (rows - 1) * stride + (2 if diagonal else 4))
    for _, rows, offset, stride, dim, diagonal, _ in copies:
        extent = max(extent, offset + (rows - 1) * stride + (dim if diagonal else dim * dim))
    return int(extent)


@dataclass
class _Permutations:
    """Consecutive permutations, composed into one gather where :func:`_place` puts them."""

    gathers: list[Gather]


def _fuse(elements: Sequence[Element]) -> list:
    """Items to encode: runs of permutations, lists of one-wire elements, other elements.

    The same grouping as :func:`~qstore_pl.devices.batched.kernel.fuse`: consecutive
    one-wire gates on a wire multiply into one matrix, and consecutive permutations
    compose into one gather.
    """
    out: list = []
    pending: dict[int, list[Element]] = {}

    def flush(wires):
        for w in wires:
            if w in pending:
                out.append(pending.pop(w))

    for e in elements:
        if e.fusable:
            pending.setdefault(e.wires[0], []).append(e)
            continue
        flush(e.wires if e.gather is None else list(pending))
        if e.gather is None:
            out.append(e)
        elif out and isinstance(out[-1], _Permutations):
            out[-1].gathers.append(e.gather)
        else:
            out.append(_Permutations([e.gather]))
    flush(list(pending))
    return out


#: From ``ROTATION_MIN_WIRES`` to ``ROTATION_MAX_WIRES`` wires, one-wire gates never
#: run on a row's lowest :data:`ROTATION_BITS` bits: the row kernel pairs amplitudes
#: that close 8-12x slower than distant ones (at 16 qubits, complex64: 90-143 us per
#: gate on bits 0-2 against 13 us from bit 5 up), while rotating a row's bits costs
#: about 15 us per plane. Wider rows than a cache block are not rotated: their runs of
#: one-wire gates take the lowest bits inside the block sweep
#: (:func:`jit_kernels._low_gates`), where two rotations were two more passes over a
#: row (W1's engine step, ``benchmarks/bench_adjoint.py --compare-to``: 1.17x at 20
#: qubits, 1.20x at 22, 0.95-1.05x at 16-19).
ROTATION_MIN_WIRES = 10
ROTATION_MAX_WIRES = jit_kernels.CACHE_BLOCK_BITS
ROTATION_BITS = 3


@dataclass(frozen=True)
class _Placed:
    """An item of an encoded step: ``kind`` names what ``item`` is (see :func:`_place`)."""

    kind: str
    item: Any
    bits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _place(items: list, n: int) -> list[_Placed]:
    """:func:`_fuse`'s items with the bit positions the kernel applies them at.

    Gates on distinct wires commute, so in a run of one-wire gates those that would
    sit on the lowest bits go last, after a rotation of the row's bits (``"rotate"``:
    the lowest ``k`` bits move to the top) puts their wires high. The row stays rotated
    until the next permutation or the end of the step, where a rotation back undoes
    it. (A gather that undid it too read from 8 distant streams: 4.5-4.9 ms per
    20-qubit float32 row pair of planes, against 0.9 ms plus 0.8 ms to rotate back.)
    Kinds: ``"perm"`` (item: an affine map or a gather index), ``"rotate"``
    (item: ``k``), ``"fused"`` (item: one-wire elements to multiply) and ``"gate"``
    (item: an element), the last two with their bit positions.
    """
    k = ROTATION_BITS if ROTATION_MIN_WIRES <= n <= ROTATION_MAX_WIRES else 0
    shift = 0  # physical bit = (logical bit - shift) mod n

    def bits(wires) -> np.ndarray:
        return np.array([(n - 1 - w - shift) % n for w in wires], dtype=np.int64)

    out: list[_Placed] = []
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, _Permutations):
            if shift:
                out.append(_Placed("rotate", n - shift))
                shift = 0
            out.append(_Placed("perm", chain(item.gathers)))
            i += 1
            continue
        if not isinstance(item, list):
            out.append(_Placed("gate", item, bits(item.wires)))
            i += 1
            continue
        run = []
        while i < len(items) and isinstance(items[i], list):
            run.append(items[i])
            i += 1
        wires = [fused[0].wires[0] for fused in run]
        placed = [_Placed("fused", f, bits(f[0].wires)) for f in run]
        slow = [f for f, item in zip(run, placed) if item.bits[0] < k]
        if not slow or len(set(wires)) != len(wires):
            out.extend(placed)
            continue
        out.extend(item for item in placed if item.bits[0] >= k)
        out.append(_Placed("rotate", k))
        shift = (shift + k) % n
        out.extend(_Placed("fused", f, bits(f[0].wires)) for f in slow)
    if shift:
        out.append(_Placed("rotate", n - shift))
    return out


def layout(bound: BoundProgram) -> Layout:
    """The layout for ``bound``'s program, pattern and batch size (cached on the program)."""
    cache = bound.program.__dict__.setdefault("_layouts", BoundedCache(16))
    return cache.get_or_build(
        (bound.per_row, bound.batch), lambda: Layout(bound.program, bound.per_row, bound.batch)
    )


def forward_plan(lay: Layout, skip: tuple[int, ...] = ()) -> SequencePlan:
    """The whole circuit as one step, less the gates at positions ``skip``."""
    left = sorted(set(range(len(lay.program.gates))).difference(skip))
    return SequencePlan([[lay.element(p) for p in left]], lay.program.num_wires, lay.batch)
