"""Forward simulation and adjoint derivatives of a whole batch at once.

The backward sweep walks the circuit in *segments*. A trainable gate's derivative is
``-2 Im <λ|G|ψ>`` with ψ and λ taken right after the gate. It can be read later, at a
segment's end, when every gate between is either one that commutes with the generator
G, or (for a one-wire G) a one-wire gate: then ``<λ|G|ψ>`` after the gate equals
``<λ|S G S†|ψ>`` at the segment's end, ``S`` the one-wire gates in between. Each
segment reads every such derivative at once, from one pass per wire that sums
``conj(λ) ψ`` into a ``2x2`` matrix per wire (or one pass for all diagonal ones), and is
then undone on ψ and λ. A layer of rotations and entanglers costs one read and one undo
pass: W1's ``RY`` is read through the ``RZ`` after it, with no change of basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pennylane as qml

from qstore_pl.devices.batched import deferred_reads, jit_kernels
from qstore_pl.devices.batched.deferred_reads import DeferredReads
from qstore_pl.devices.batched.kernel import check_width, fuse
from qstore_pl.devices.batched.measure import adjoint_states, marginal, z_cotangent_halves
from qstore_pl.devices.batched.plan import Element, Layout, SequencePlan, forward_plan, layout
from qstore_pl.devices.batched.program import (
    ArrayGate,
    BoundProgram,
    GateTemplate,
    Generator,
    Program,
)


@dataclass(frozen=True)
class Segment:
    """One step of the backward sweep: read derivatives here, then undo gates.

    Attributes
    ----------
    evaluate : tuple[int, ...]
        Gates (positions in ``program.gates``) whose derivatives are read at this point.
    undo : tuple[int, ...]
        Gates to undo afterwards, in the order to undo them.
    through : tuple[tuple[int, ...], ...]
        Per evaluated gate, the later one-wire gates its generator is conjugated
        through (in the order they apply), empty when the generator commutes with
        every gate in between.
    """

    evaluate: tuple[int, ...]
    undo: tuple[int, ...]
    through: tuple[tuple[int, ...], ...]


def _generator(gate: GateTemplate) -> Generator:
    """The generator of a gate the engine differentiates (only gates with one are)."""
    assert gate.generator is not None, f"{gate.name} has no generator"
    return gate.generator


def _commute(generator_gate: GateTemplate, other: GateTemplate) -> bool:
    if not set(generator_gate.wires) & set(other.wires):
        return True
    if _generator(generator_gate).basis is None and other.kind in ("diag",):
        return True  # both diagonal in the computational basis
    return _commute_numerically(generator_gate, other)


#: (generator, other gate's matrix, their wires relative to each other) -> commute?
_COMMUTES: dict[tuple, bool] = {}


def _commute_numerically(generator_gate: GateTemplate, other: GateTemplate) -> bool:
    wires = tuple(dict.fromkeys(generator_gate.wires + other.wires))
    if len(wires) > 6 or other.num_params > 1:
        return False
    if other.num_params == 0:
        if other.fixed_matrix is not None:
            m = other.fixed_matrix
        elif other.fixed_diag is not None:
            m = np.diag(other.fixed_diag)
        else:
            m = np.asarray(other.op.matrix())
    elif other.generator is not None:
        m = other.generator.matrix  # U(θ) commutes with G iff its generator does
    else:
        return False
    # a structure asks about the same pairs of gates in many places (a QCNN: ~13,000
    # questions, 20 s of a first training step), so answers are kept by what they
    # depend on: the two matrices and how their wires overlap
    g_matrix = _generator(generator_gate).matrix
    position = {w: i for i, w in enumerate(wires)}
    key = (
        g_matrix.tobytes(),
        tuple(position[w] for w in generator_gate.wires),
        np.asarray(m, complex).tobytes(),
        tuple(position[w] for w in other.wires),
    )
    found = _COMMUTES.get(key)
    if found is None:
        g = _embed(g_matrix, generator_gate.wires, wires)
        m = _embed(np.asarray(m, complex), other.wires, wires)
        found = _COMMUTES[key] = bool(np.allclose(g @ m, m @ g, atol=1e-12))
    return found


def _embed(matrix: np.ndarray, wires: tuple[int, ...], all_wires: tuple[int, ...]):
    return qml.math.expand_matrix(matrix, wires, wire_order=all_wires)


def segments(program: Program, trainable: frozenset[int]) -> list[Segment]:
    """The backward sweep's steps for the gates at positions ``trainable``.

    Cached on the program: the schedule depends only on the structure.
    """
    cache = program.__dict__.setdefault("_segments", {})
    if trainable not in cache:
        cache[trainable] = _build_segments(program, trainable)
    return cache[trainable]


def _build_segments(program: Program, trainable: frozenset[int]) -> list[Segment]:
    """Peel the circuit from its end.

    Each step reads the derivative of every not-yet-read trainable gate that can be
    read at this point (:func:`_read_through`), then undoes every gate it can: a gate
    last on all its wires that is not trainable or already read, one-wire gates first
    (:func:`_peel`).
    """
    gates = program.gates
    stacks: dict[int, list[int]] = {}
    for p, gate in enumerate(gates):
        for w in gate.wires:
            stacks.setdefault(w, []).append(p)
    left = set(trainable)
    result = []
    while left:
        evaluate, through = [], []
        for p in sorted(left):
            later = [q for w in gates[p].wires for q in stacks[w][stacks[w].index(p) + 1 :]]
            found = _read_through(gates, p, later)
            if found is not None:
                evaluate.append(p)
                through.append(found)
        left.difference_update(evaluate)
        undo: list[int] = []
        progress = True
        while progress and left:
            # one-wire gates first: a layer's rotations are undone before the entanglers
            # next to them, which then stay one permutation (deferred_reads.py needs
            # the last step so)
            progress = _peel(gates, stacks, left, undo, one_wire=True)
            progress = _peel(gates, stacks, left, undo, one_wire=False) or progress
        result.append(Segment(tuple(evaluate), tuple(undo), tuple(through)))
    return result


def _peel(
    gates: list[GateTemplate],
    stacks: dict[int, list[int]],
    left: set[int],
    undo: list[int],
    one_wire: bool,
) -> bool:
    """Move gates last on all their wires, and not ``left`` to read, from ``stacks`` to
    ``undo``: with ``one_wire`` one-wire gates, until none is on top; else gates on
    several wires, one pass over the wires. Returns whether any moved."""
    before = len(undo)
    while True:
        count = len(undo)
        for w in list(stacks):
            if not stacks[w]:
                continue
            top = stacks[w][-1]
            wires = gates[top].wires
            if (len(wires) == 1) != one_wire or top in left:
                continue
            if any(stacks[v][-1] != top for v in wires):
                continue
            for v in wires:
                stacks[v].pop()
            undo.append(top)
        if not one_wire or len(undo) == count:
            return len(undo) > before


def _read_through(gates: list[GateTemplate], p: int, later: list[int]) -> tuple[int, ...] | None:
    """The gates to conjugate gate ``p``'s generator through to read its derivative
    after ``later`` (the gates still after it on its wires, in order), or ``None``
    when it cannot be read there yet.

    Gates that commute with the generator pass; from the first that does not, a one-wire
    generator may still be carried through one-wire gates.
    """
    gate = gates[p]
    for k, q in enumerate(later):
        if not _commute(gate, gates[q]):
            rest = later[k:]
            if _generator(gate).single_wire and all(len(gates[r].wires) == 1 for r in rest):
                return tuple(rest)
            return None
    return ()


def source(bound: BoundProgram) -> tuple[Layout, np.ndarray]:
    """``bound``'s layout and its flat source of gate values, built once per binding."""
    found = bound.__dict__.get("_source")
    if found is None:
        lay = layout(bound)
        found = bound.__dict__["_source"] = (lay, lay.values(bound))
    return found


def forward(kernel, bound: BoundProgram) -> np.ndarray:
    """Final states of every circuit, ``(B, 2**n)``.

    On the planned kernel a circuit's opening one-wire gates (:func:`opening_gates`)
    are no passes over the states: each row starts as the product state they leave.
    """
    n = bound.program.num_wires
    if kernel.planned:
        opening = opening_gates(bound.program) if bound.initial_state is None else ()
        lay, values = source(bound)
        plan = lay.plan(("forward", opening), lambda lay: forward_plan(lay, opening))
        real, imag = plan.values(values, np.finfo(kernel.dtype).dtype)
        scratch = jit_kernels.Scratch(kernel.buffers)
        if opening:
            states = kernel.buffers.empty((bound.batch, 2**n), kernel.dtype)  # all written
            start = product_start(bound, opening)
            states = plan.apply(states, 0, real, imag, start, scratch)
        else:
            states = kernel.initial_states(bound.batch, n, bound.initial_state)
            states = plan.apply(states, 0, real, imag, scratch=scratch)
    else:
        states = kernel.initial_states(bound.batch, n, bound.initial_state)
        gates = [g.array() for g in bound.gates]
        states = kernel.apply_all(states, fuse(gates, kernel.compose_permutations), n)
    if bound.global_phase is not None:
        states = states * bound.global_phase[:, None].astype(states.dtype)
    return states


def opening_gates(program: Program) -> tuple[int, ...]:
    """Positions of the gates on one wire that no gate on several wires precedes on it:
    on ``|0…0>`` they leave a product state (an angle encoding and a first layer of
    rotations: a quarter of W1's one-wire passes)."""
    found = program.__dict__.get("_opening")
    if found is None:
        touched: set[int] = set()
        opening = []
        for p, gate in enumerate(program.gates):
            if len(gate.wires) == 1 and gate.wires[0] not in touched:
                opening.append(p)
            else:
                touched.update(gate.wires)
        found = program.__dict__["_opening"] = tuple(opening)
    return found


def product_start(
    bound: BoundProgram, positions: tuple[int, ...], phase: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The product state the one-wire gates at ``positions`` leave on ``|0…0>``: real
    and imaginary parts of each bit position's two amplitudes, ``(K, n, 2)``, ``K`` 1
    or the batch (:func:`jit_kernels.apply_sequence`'s ``start``); with ``phase``, times
    the circuits' global phase."""
    lay, values = source(bound)
    table, fixed, rows = lay.plan(
        ("product", positions), lambda lay: _product_table(lay, positions)
    )
    re, im = jit_kernels.product_factors(values, table, fixed, rows, bound.program.num_wires)
    if phase and bound.global_phase is not None:
        factors = np.broadcast_to(re + 1j * im, (bound.batch, *re.shape[1:])).copy()
        factors[:, 0] *= bound.global_phase[:, None]
        re, im = factors.real.copy(), factors.imag.copy()
    return re, im


def _product_table(lay: Layout, positions: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`jit_kernels.product_factors`'s encoding of the one-wire gates at
    ``positions``: per gate its bit position, where its values sit and their kind; the
    fixed matrices of permutations (which have no values); the factors' rows."""
    program, n = lay.program, lay.program.num_wires
    table: list[tuple[int, int, int, int]] = []
    fixed: list[np.ndarray] = []
    for p in positions:
        bit = n - 1 - program.gates[p].wires[0]
        src = lay.sources[p]
        if src is None:  # a permutation
            table.append((bit, len(fixed), 0, jit_kernels.PERMUTATION))
            fixed.append(np.asarray(program.gates[p].fixed_matrix, dtype=complex))
        else:
            kind = jit_kernels.DIAGONAL if src.diagonal else jit_kernels.DENSE
            table.append((bit, src.offset, src.stride, kind))
    rows = lay.batch if any(stride for _, _, stride, _ in table) else 1
    encoded = np.array(table, dtype=np.int64).reshape(-1, 4)
    return encoded, np.array(fixed, dtype=complex).reshape(-1, 2, 2), rows


def _last_read_product(program: Program, trainable: frozenset[int]) -> tuple[int, ...] | None:
    """The gates still applied at the backward sweep's last reads when they are all
    one-wire gates (ψ is then a product state there), else ``None``."""
    cache = program.__dict__.setdefault("_last_read_product", {})
    if trainable not in cache:
        steps = segments(program, trainable)
        undone = {p for segment in steps[:-1] for p in segment.undo}
        left = tuple(p for p in range(len(program.gates)) if p not in undone)
        one_wire = all(len(program.gates[p].wires) == 1 for p in left)
        cache[trainable] = left if steps and one_wire else None
    return cache[trainable]


def _last_read_start(
    bound: BoundProgram, trainable: frozenset[int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """ψ at the sweep's last reads as product-state factors (:func:`product_start`,
    global phase included), or ``None`` where more than one-wire gates on ``|0…0>``
    precede them."""
    if bound.initial_state is not None:
        return None
    left = _last_read_product(bound.program, trainable)
    return None if left is None else product_start(bound, left, phase=True)


def vjp_sweep(
    kernel,
    bound: BoundProgram,
    psi: np.ndarray,
    measurements,
    cotangents,
    trainable: frozenset[int],
    stacked: int = 1,
) -> dict[int, np.ndarray]:
    """Derivatives of every trainable gate parameter (:func:`backward`) for the adjoint
    states of ``cotangents`` (:func:`sweep_states`); ``psi`` is left as it is.

    A vector-Jacobian product whose reads are all one-wire ones, on the planned kernel
    with a row pair per thread (:func:`jit_kernels.sweeps_whole_rows`), runs every step
    on each row pair in one go
    (:meth:`~qstore_pl.devices.batched.plan.SequencePlan.adjoint_sweep`): ψ is read
    where it lies, not copied to be undone in place, and no step stores the rows. With
    ``<Z>`` readouts alone λ is made from ψ in the kernel's planes, with no λ array.
    Where only one-wire gates are left at the last reads, ψ there is their product
    state (:func:`product_start`), not undone: those reads come from λ alone; and where
    the last step undoes one-wire gates and one affine permutation, the second-last
    step's reads wait for it (:mod:`~qstore_pl.devices.batched.deferred_reads`).
    """
    n = bound.program.num_wires
    if stacked == 1 and kernel.planned and jit_kernels.sweeps_whole_rows(bound.batch, 2**n):
        plan, reads, merged, table = _sweep_plan(bound, trainable)
        if not any(read.multi or read.other for read in reads):
            _, values = source(bound)
            real, imag = plan.values(values, np.finfo(psi.dtype).dtype)
            halves = z_cotangent_halves(measurements, cotangents, n, bound.batch)
            if halves is not None:  # λ is made from ψ in the kernel's planes
                lam: np.ndarray | tuple = tuple(h.astype(real.dtype) for h in halves)
            else:
                out = kernel.buffers.empty(psi.shape, psi.dtype)
                lam = adjoint_states(kernel, psi, measurements, cotangents, n, out=out)
            transitions = np.empty((bound.batch, table[1].size, 2, 2), dtype=complex)
            start = _last_read_start(bound, trainable)
            deferred = None if start is None else _deferred(bound, trainable)
            scratch = jit_kernels.Scratch(kernel.buffers)
            plan.adjoint_sweep(
                psi, lam, real, imag, table, transitions, scratch, start,
                None if deferred is None else deferred.arrays(),
            )  # fmt: skip
            return _read_ones(bound, merged, transitions)
    states = sweep_states(kernel, psi, measurements, cotangents, n, stacked)
    return backward(kernel, bound, states, trainable)


def _deferred(bound: BoundProgram, trainable: frozenset[int]) -> DeferredReads | None:
    """The second-last step's reads taken at the last step of :func:`vjp_sweep`
    (:mod:`~qstore_pl.devices.batched.deferred_reads`), where the sweep's structure
    allows it; built once per layout. Call only where ψ is a product state at the last
    reads (:func:`_last_read_start`)."""
    if not deferred_reads.ENABLED:
        return None

    def build(lay: Layout) -> tuple[DeferredReads | None]:  # in a tuple: None is kept too
        plan, _, _, (offsets, bits, _) = _sweep_plan(bound, trainable)
        n = bound.program.num_wires
        return (deferred_reads.plan_deferred(plan.encoded, plan.step_ranges, offsets, bits, n),)

    lay, _ = source(bound)
    return lay.plan(("deferred", trainable), build)[0]


def sweep_states(
    kernel, psi: np.ndarray, measurements, cotangents, n: int, stacked: int = 1
) -> np.ndarray:
    """ψ's rows over the adjoint states ``λ = Σ_m dy_m O_m ψ``, one array for
    :func:`backward`: ``stacked`` copies of the batch (one for a vector-Jacobian
    product, one per output for a Jacobian; ``cotangents`` have ``stacked * B`` rows).

    λ is written into the array's lower rows, not concatenated after ψ: a 20-qubit
    batch of 32 is 256 MB per copy, first touched on a first call.
    """
    batch = psi.shape[0]
    states = kernel.buffers.empty(((1 + stacked) * batch, psi.shape[1]), psi.dtype)
    states[:batch] = psi
    lam = states[batch:]
    if stacked > 1:
        lam.reshape(stacked, batch, -1)[:] = psi
    adjoint_states(kernel, psi if stacked == 1 else lam, measurements, cotangents, n, out=lam)
    return states


def backward(kernel, bound: BoundProgram, states: np.ndarray, trainable: frozenset[int]):
    """Derivatives of every trainable gate parameter: ``{position: (rows,)}``.

    ``states`` (:func:`sweep_states`) stacks the batch's final states ψ over one adjoint
    state per circuit (a vector-Jacobian product) or several stacked copies of the
    batch (one per output, for a Jacobian); rows of λ reuse ψ's matrices, ``row % B``.
    Each segment's undo is one pass over it, in place, before the next segment's reads.
    Where only one-wire gates are left at the last reads (:func:`vjp_sweep`), only λ
    is undone there, and those reads come from λ and ψ's product state.
    """
    n = bound.program.num_wires
    batch = bound.batch
    grads = {}
    scratch = jit_kernels.Scratch(kernel.buffers)  # the steps' planes, step after step
    if kernel.planned:
        _, values = source(bound)
        plan, reads, merged, _ = _sweep_plan(bound, trainable)
        real, imag = plan.values(values, np.finfo(states.dtype).dtype)
        start = _last_read_start(bound, trainable)
        parts = []
        for step, read in enumerate(reads):
            transitions = _transitions(read, states.shape[0] - batch)
            last = step == len(reads) - 1 and not (read.multi or read.other)
            if last and start is not None:
                lam = plan.apply(states[batch:], step, real, imag, scratch=scratch)
                jit_kernels.product_reads(lam, batch, read.bits, transitions, start, scratch)
            else:
                plan.adjoint_step(
                    states, step, real, imag, batch, read.bits, read.off, transitions, scratch
                )
            parts.append(transitions)
            if read.multi or read.other:
                grads.update(_read_states(kernel, states, bound, read))
        # every step's one-wire reads in one product: read step by step, their Python
        # cost more than the kernels at 4 qubits
        grads.update(_read_ones(bound, merged, np.concatenate(parts, axis=1)))
        return grads
    pending: list[ArrayGate] = []
    for segment in segments(bound.program, trainable):
        states = kernel.apply_all(states, fuse(pending, kernel.compose_permutations), n)
        read = _classify(bound.program, segment)
        transitions = _transitions(read, states.shape[0] - batch)
        if read.bits.size:
            check_width(states, n)
            jit_kernels.read_transitions(states, batch, read.bits, read.off, transitions, scratch)
        grads.update(_read_ones(bound, read, transitions))
        grads.update(_read_states(kernel, states, bound, read))
        pending = [bound.gates[p].array(inverse=True) for p in segment.undo]
    return grads


@dataclass(frozen=True)
class _Read:
    """One segment's derivative reads, classified once per structure.

    ``ones`` are one-wire generators, each with the later one-wire gates it is read
    through, all read from the ``2x2`` transition matrices of their wires (``bits``,
    bit positions; ``off``: whether a wire needs the off-diagonal entries; ``column``:
    index in ``bits`` of each one's wire; ``fixed``: which of them are read through
    nothing, and their generators; ``carried``: the others, grouped by how many gates
    they are read through, with their generators and those gates). ``multi`` are
    diagonal generators on several wires, read from marginals; ``other`` the rest, each
    with its own change of basis.
    """

    ones: tuple[tuple[int, tuple[int, ...]], ...]
    bits: np.ndarray
    off: np.ndarray
    columns: np.ndarray
    fixed: tuple[np.ndarray, np.ndarray]
    carried: tuple[tuple[np.ndarray, np.ndarray, tuple[tuple[int, ...], ...]], ...]
    multi: tuple[int, ...]
    other: tuple[int, ...]


def _sweep_plan(
    bound: BoundProgram, trainable: frozenset[int]
) -> tuple[SequencePlan, list[_Read], _Read, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`_backward_plan` for ``bound``'s layout, built once per layout."""
    lay, _ = source(bound)
    return lay.plan(("backward", trainable), lambda lay: _backward_plan(lay, trainable))


def _backward_plan(
    lay: Layout, trainable: frozenset[int]
) -> tuple[SequencePlan, list[_Read], _Read, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every step of the backward sweep as one encoded plan, what each step reads,
    every step's one-wire reads merged (:func:`_merged_ones`), and the steps' read bits
    end to end: ``(offsets, bits, off)``, step ``s``'s at ``offsets[s] : offsets[s + 1]``."""
    program = lay.program
    steps, reads = [], []
    pending: list[Element] = []
    for segment in segments(program, trainable):
        steps.append(pending)
        reads.append(_classify(program, segment))
        pending = [lay.element(p, inverse=True) for p in segment.undo]
    offsets = np.cumsum([0] + [read.bits.size for read in reads], dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    table = (
        offsets,
        np.concatenate([none, *(read.bits for read in reads)]).astype(np.int64),
        np.concatenate([none, *(read.off for read in reads)]).astype(np.bool_),
    )
    plan = SequencePlan(steps, program.num_wires, lay.batch)
    return plan, reads, _merged_ones(reads), table


def _merged_ones(reads: list[_Read]) -> _Read:
    """The one-wire reads of every step as one read, over the steps' transition
    matrices side by side (in step order)."""
    ones: list[tuple[int, tuple[int, ...]]] = []
    columns, fixed_index, fixed_generators = [], [], []
    carried: dict[int, tuple[list, list, list]] = {}
    column_offset = 0
    for read in reads:
        offset = len(ones)
        ones += read.ones
        columns.append(read.columns + column_offset)
        fixed_index.append(read.fixed[0] + offset)
        fixed_generators.append(read.fixed[1])
        for index, generators, throughs in read.carried:
            group = carried.setdefault(len(throughs[0]), ([], [], []))
            group[0].append(index + offset)
            group[1].append(generators)
            group[2].extend(throughs)
        column_offset += read.bits.size
    empty = np.zeros(0, dtype=np.int64)
    return _Read(
        tuple(ones),
        empty,
        np.zeros(0, dtype=np.bool_),
        np.concatenate(columns) if columns else empty,
        (
            np.concatenate(fixed_index) if fixed_index else empty,
            np.concatenate(fixed_generators) if fixed_generators else np.zeros((0, 2, 2)),
        ),
        tuple(
            (np.concatenate(index), np.concatenate(generators), tuple(throughs))
            for index, generators, throughs in carried.values()
        ),
        (),
        (),
    )


def _classify(program: Program, segment: Segment) -> _Read:
    cache = program.__dict__.setdefault("_reads", {})
    found = cache.get(segment)
    if found is None:
        found = cache[segment] = _build_read(program, segment)
    return found


def _build_read(program: Program, segment: Segment) -> _Read:
    gates = program.gates
    n = program.num_wires
    ones: list[tuple[int, tuple[int, ...]]] = []
    off: dict[int, bool] = {}
    multi: list[int] = []
    other: list[int] = []
    for p, through in zip(segment.evaluate, segment.through):
        g = _generator(gates[p])
        if g.single_wire:
            ones.append((p, through))
            diagonal = g.basis is None and all(gates[q].kind == "diag" for q in through)
            off[g.wires[0]] = off.get(g.wires[0], False) or not diagonal
        else:
            (multi if g.basis is None else other).append(p)
    wires = sorted(off)
    column = {w: i for i, w in enumerate(wires)}
    by_length: dict[int, list[int]] = {}
    for i, (_, through) in enumerate(ones):
        by_length.setdefault(len(through), []).append(i)

    def generators(indices) -> np.ndarray:
        return np.array([_generator(gates[ones[i][0]]).matrix for i in indices]).reshape(-1, 2, 2)

    fixed = by_length.pop(0, [])
    return _Read(
        tuple(ones),
        np.array([n - 1 - w for w in wires], dtype=np.int64),
        np.array([off[w] for w in wires], dtype=np.bool_),
        np.array([column[gates[p].wires[0]] for p, _ in ones], dtype=np.int64),
        (np.array(fixed, dtype=np.int64), generators(fixed)),
        tuple(
            (np.array(idx, dtype=np.int64), generators(idx), tuple(ones[i][1] for i in idx))
            for idx in by_length.values()
        ),
        tuple(multi),
        tuple(other),
    )


def _transitions(read: _Read, rows: int) -> np.ndarray:
    """Room for a step's transition matrices: ``(rows of λ, wires read, 2, 2)``."""
    return np.empty((rows, read.bits.size, 2, 2), dtype=complex)


def _one_wire_matrices(bound: BoundProgram, q: int) -> np.ndarray:
    """Gate ``q`` (one wire) as ``(K, 2, 2)`` matrices, ``K`` 1 or the batch, read from
    the values the forward pass's plan was filled from."""
    lay, values = source(bound)
    src = lay.sources[q]
    if src is None:  # a permutation
        return np.asarray(bound.program.gates[q].fixed_matrix, complex)[None]
    rows = bound.batch if src.stride else 1
    if not src.diagonal:
        return values[src.offset : src.offset + 4 * rows].reshape(rows, 2, 2)
    diagonal = values[src.offset : src.offset + 2 * rows].reshape(rows, 2)
    return ArrayGate("diag", bound.program.gates[q].wires, diagonal).as_dense().value


def _carried_operators(
    bound: BoundProgram, generators: np.ndarray, throughs: tuple[tuple[int, ...], ...]
) -> np.ndarray:
    """``S G S†`` for each generator ``G`` and ``S`` the gates it is read through (as
    many for each): ``(gates, 1 or B, 2, 2)``."""
    operators = generators[:, None]
    for step in range(len(throughs[0])):
        matrices = [_one_wire_matrices(bound, through[step]) for through in throughs]
        rows = max(m.shape[0] for m in matrices)
        if rows > 1:
            matrices = [m if m.shape[0] == rows else np.repeat(m, rows, 0) for m in matrices]
        operators = _sandwich(np.stack(matrices), operators)
    return operators


def _sandwich(s: np.ndarray, o: np.ndarray) -> np.ndarray:
    """``s @ o @ s†`` for stacks of ``2x2`` matrices, entry by entry: numpy's matmul
    loops over the little matrices one by one (12x slower for 16 gates x 256 rows)."""
    s00, s01, s10, s11 = s[..., 0, 0], s[..., 0, 1], s[..., 1, 0], s[..., 1, 1]
    o00, o01, o10, o11 = o[..., 0, 0], o[..., 0, 1], o[..., 1, 0], o[..., 1, 1]
    t00, t01 = s00 * o00 + s01 * o10, s00 * o01 + s01 * o11
    t10, t11 = s10 * o00 + s11 * o10, s10 * o01 + s11 * o11
    c00, c01, c10, c11 = np.conj(s00), np.conj(s10), np.conj(s01), np.conj(s11)  # s†
    out = np.empty(np.broadcast_shapes(s.shape, o.shape), dtype=np.result_type(s, o))
    out[..., 0, 0] = t00 * c00 + t01 * c10
    out[..., 0, 1] = t00 * c01 + t01 * c11
    out[..., 1, 0] = t10 * c00 + t11 * c10
    out[..., 1, 1] = t10 * c01 + t11 * c11
    return out


def _read_ones(bound: BoundProgram, read: _Read, transitions: np.ndarray):
    """``-2 Im <λ|G|ψ>`` for the one-wire gates of ``read``, from ``transitions``."""
    batch = bound.batch
    rows = transitions.shape[0]
    out = {}
    if read.ones:
        # <λ|O|ψ> = Σ O_ab M_ab, all gates of a kind in one product
        values = np.empty((rows, len(read.ones)), dtype=complex)
        index, generators = read.fixed
        if index.size:
            m = transitions[:, read.columns[index]]
            values[:, index] = np.einsum("gab,rgab->rg", generators, m)
        for index, generators, throughs in read.carried:
            operators = _carried_operators(bound, generators, throughs)
            m = transitions[:, read.columns[index]]
            if operators.shape[1] == 1:
                values[:, index] = np.einsum("gab,rgab->rg", operators[:, 0], m)
            else:
                operators = operators[:, np.arange(rows) % batch]
                values[:, index] = np.einsum("grab,rgab->rg", operators, m)
        values = -2 * np.imag(values)
        for i, (p, _) in enumerate(read.ones):
            out[p] = values[:, i]
    return out


def _read_states(kernel, states, bound: BoundProgram, read: _Read) -> dict[int, np.ndarray]:
    """``-2 Im <λ|G|ψ>`` for the gates of ``read`` on several wires, from the states
    (``states`` stacks ψ over λ)."""
    program = bound.program
    n = program.num_wires
    batch = bound.batch
    psi, lam = states[:batch], states[batch:]
    rows, size = lam.shape
    repeat = rows // batch
    out = {}
    if read.multi:
        w = (np.conj(lam).reshape(repeat, batch, size) * psi[None]).reshape(-1, size)
        for p in read.multi:
            g = _generator(program.gates[p])
            out[p] = -2 * np.imag(marginal(w, g.wires, n) @ g.eigvals)
    for p in read.other:
        g = _generator(program.gates[p])
        word = _pauli_word(program, p, n)
        if word is not None:  # G is one Pauli word: G ψ is a signed gather of ψ
            index, phases = word
            applied = psi[:, index] * phases
            overlap = (np.conj(lam).reshape(repeat, batch, size) * applied[None]).sum(axis=-1)
            out[p] = -2 * np.imag(overlap.reshape(-1))
            continue
        rotation = [ArrayGate("dense", g.wires, g.basis)]
        rotated_lam = kernel.apply_all(lam.copy(), rotation, n)
        rotated_psi = kernel.apply_all(psi.copy(), rotation, n)
        w = (np.conj(rotated_lam).reshape(repeat, batch, size) * rotated_psi[None]).reshape(
            -1, size
        )
        out[p] = -2 * np.imag(marginal(w, g.wires, n) @ g.eigvals)
    return out


def _pauli_word(program: Program, p: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Gate ``p``'s generator as ``G ψ = phases * ψ[:, index]`` when it is one Pauli
    word (IsingXX, IsingYY, ...), else ``None``.

    Built once per program; reading such a derivative needs no basis change of copies
    of ψ and λ.
    """
    cache = program.__dict__.setdefault("_pauli_words", {})
    if p not in cache:
        cache[p] = _build_pauli_word(program.gates[p].op, n)
    return cache[p]


def _build_pauli_word(op, n: int):
    try:
        rep = op.generator().pauli_rep
    except Exception:  # no usable generator form: the general read does it
        return None
    if rep is None or len(rep) != 1:
        return None
    ((word, coeff),) = rep.items()
    k = np.arange(2**n)
    flip = 0
    phases = np.full(2**n, complex(coeff))
    for wire, letter in word.items():
        bit = n - 1 - int(wire)
        value = (k >> bit) & 1
        if letter in "XY":
            flip |= 1 << bit
        if letter == "Y":  # Y|b> = i (-1)^b |1-b>
            phases = phases * (1j * (1 - 2 * value))
        elif letter == "Z":
            phases = phases * (1 - 2 * value)
    # (G ψ)[j] = c * phase(j ^ flip) * ψ[j ^ flip]
    index = k ^ flip
    return index, phases[index]
