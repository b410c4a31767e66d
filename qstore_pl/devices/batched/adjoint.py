"""Forward simulation and adjoint derivatives of a whole batch at once.

The backward sweep walks the circuit in *segments*. A trainable gate's derivative is
``-2 Im <λ|G|ψ>`` with ψ and λ taken right after the gate; when the generator G
commutes with every gate that follows it inside the segment, the same value can be
read at the segment's end. So a segment collects, walking backwards, the gates whose
generators commute with what comes after them; all their derivatives are read at
once (one basis change and one reduction per group of wires), then the segment is
undone on ψ and λ. For a layer of single-qubit rotations that is one read per layer
instead of one per gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pennylane as qml

from qstore_pl.devices.batched import jit_kernels
from qstore_pl.devices.batched.kernel import fuse
from qstore_pl.devices.batched.measure import marginal, z_expectations
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
    """

    evaluate: tuple[int, ...]
    undo: tuple[int, ...]


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

    Each step reads the derivative of every not-yet-read trainable gate whose
    generator commutes with all gates still after it on its wires, then undoes every
    gate it can: a gate last on all its wires that is not trainable or already read.
    """
    gates = program.gates
    stacks: dict[int, list[int]] = {}
    for p, gate in enumerate(gates):
        for w in gate.wires:
            stacks.setdefault(w, []).append(p)
    left = set(trainable)
    result = []
    while left:
        evaluate = []
        for p in sorted(left):
            gate = gates[p]
            later = {q for w in gate.wires for q in stacks[w][stacks[w].index(p) + 1 :]}
            if all(_commute(gate, gates[q]) for q in later):
                evaluate.append(p)
        left.difference_update(evaluate)
        undo: list[int] = []
        progress = True
        while progress and left:
            progress = False
            for w in list(stacks):
                if not stacks[w]:
                    continue
                top = stacks[w][-1]
                if top in left or any(stacks[v][-1] != top for v in gates[top].wires):
                    continue
                for v in gates[top].wires:
                    stacks[v].pop()
                undo.append(top)
                progress = True
        result.append(Segment(tuple(evaluate), tuple(undo)))
    return result


def source(bound: BoundProgram) -> tuple[Layout, np.ndarray]:
    """``bound``'s layout and its flat source of gate values, built once per binding."""
    found = bound.__dict__.get("_source")
    if found is None:
        lay = layout(bound)
        found = bound.__dict__["_source"] = (lay, lay.values(bound))
    return found


def forward(kernel, bound: BoundProgram) -> np.ndarray:
    """Final states of every circuit, ``(B, 2**n)``."""
    n = bound.program.num_wires
    states = kernel.initial_states(bound.batch, n, bound.initial_state)
    if kernel.planned:
        lay, values = source(bound)
        plan = lay.plan("forward", forward_plan)
        real, imag = plan.values(values, np.finfo(states.dtype).dtype)
        states = plan.apply(states, 0, real, imag)
    else:
        gates = [g.array() for g in bound.gates]
        states = kernel.apply_all(states, fuse(gates, kernel.compose_permutations), n)
    if bound.global_phase is not None:
        states = states * bound.global_phase[:, None].astype(states.dtype)
    return states


def _frame(program: Program, positions) -> dict[int, int]:
    """Wire -> the first gate at ``positions`` whose one-wire generator needs a basis
    change on that wire to be diagonal."""
    frame: dict[int, int] = {}
    for p in positions:
        g = _generator(program.gates[p])
        if g.single_wire and g.basis is not None:
            frame.setdefault(g.wires[0], p)
    return frame


def backward(kernel, bound: BoundProgram, psi, lam, trainable: frozenset[int]):
    """Derivatives of every trainable gate parameter: ``{position: (rows,)}``.

    ``lam`` holds one adjoint state per circuit (a vector-Jacobian product) or several
    stacked copies of the batch (one per output, for a Jacobian). Between reads, the
    undoing of a segment, the basis change back from the last read and the basis
    change for the next read are fused into one pass per wire.
    """
    if kernel.planned:
        return _backward_planned(kernel, bound, psi, lam, trainable)
    n = bound.program.num_wires
    psi = psi.copy()  # the kernels work in place
    grads = {}
    pending: list[ArrayGate] = []
    for segment in segments(bound.program, trainable):
        read = _classify(bound.program, segment.evaluate, _frame(bound.program, segment.evaluate))
        rotate = [ArrayGate("dense", (w,), basis) for w, basis in read.frame.items()]
        ops = fuse(pending + rotate, kernel.compose_permutations)
        psi = kernel.apply_all(psi, ops, n)
        lam = kernel.apply_all(lam, ops, n)
        if segment.evaluate:
            grads.update(_read(kernel, psi, lam, bound.program, read, n))
        unrotate = [ArrayGate("dense", (w,), basis.conj().T) for w, basis in read.frame.items()]
        pending = unrotate + [bound.gates[p].array(inverse=True) for p in segment.undo]
    return grads


@dataclass(frozen=True)
class _Read:
    """One segment's derivative reads, classified once per structure.

    ``singles`` are one-wire generators diagonal in the current frame, read from one
    ``z_expectations``; ``multi`` other diagonal ones, read from marginals; ``other``
    need their own basis change (``frame``: wire -> basis in force).
    """

    singles: tuple[int, ...]
    wires: np.ndarray
    half_sum: np.ndarray
    half_diff: np.ndarray
    multi: tuple[int, ...]
    other: tuple[int, ...]
    frame: dict[int, np.ndarray]


def _backward_plan(lay: Layout, trainable: frozenset[int]) -> tuple[SequencePlan, list[_Read]]:
    """Every step of the backward sweep as one encoded plan, and what each step reads."""
    program = lay.program
    steps, reads = [], []
    pending: list[Element] = []
    for segment in segments(program, trainable):
        frame = _frame(program, segment.evaluate)  # wire -> gate whose basis is in force
        steps.append(pending + [lay.basis(p) for p in frame.values()])
        reads.append(_classify(program, segment.evaluate, frame))
        pending = [lay.basis(p, inverse=True) for p in frame.values()]
        pending += [lay.element(p, inverse=True) for p in segment.undo]
    return SequencePlan(steps, program.num_wires, lay.batch), reads


def _classify(program: Program, positions, frame: dict[int, int]) -> _Read:
    gates = program.gates
    # the frame holds only gates whose generator needs a basis change
    bases = {w: b for w, p in frame.items() if (b := _generator(gates[p]).basis) is not None}
    singles: list[int] = []
    multi: list[int] = []
    other: list[int] = []
    for p in positions:
        g = _generator(gates[p])
        in_frame = g.single_wire and g.basis is not None and bases.get(g.wires[0]) is g.basis
        untouched = g.basis is None and not set(g.wires) & bases.keys()
        if in_frame or untouched:
            (singles if g.single_wire else multi).append(p)
        else:
            other.append(p)
    eig = np.array([_generator(gates[p]).eigvals for p in singles]).reshape(-1, 2)
    return _Read(
        tuple(singles),
        np.array([_generator(gates[p]).wires[0] for p in singles], dtype=np.int64),
        (eig[:, 0] + eig[:, 1]) / 2,
        (eig[:, 0] - eig[:, 1]) / 2,
        tuple(multi),
        tuple(other),
        bases,
    )


def _read(kernel, psi, lam, program: Program, read: _Read, n: int) -> dict[int, np.ndarray]:
    """``-2 Im <λ|G|ψ>`` for the gates of ``read`` (as :func:`_read_derivatives`)."""
    batch, size = psi.shape
    repeat = lam.shape[0] // batch

    def product(bra, ket):  # conj(bra) * ket, the ket shared by stacked bras
        return (np.conj(bra).reshape(repeat, batch, size) * ket[None]).reshape(-1, size)

    out = {}
    singles = read.singles
    if singles:
        values = np.empty((lam.shape[0], len(singles)))
        bits = n - 1 - read.wires
        jit_kernels.one_wire_derivatives(psi, lam, bits, read.half_sum, read.half_diff, values)
        for i, p in enumerate(singles):
            out[p] = values[:, i]
        singles = ()
    if singles or read.multi:
        w = product(lam, psi)
        if singles:
            total, per_wire = z_expectations(w, n)
            overlap = total[:, None] * read.half_sum + per_wire[:, read.wires] * read.half_diff
            values = -2 * np.imag(overlap)
            for i, p in enumerate(singles):
                out[p] = values[:, i]
        for p in read.multi:
            g = _generator(program.gates[p])
            out[p] = -2 * np.imag(marginal(w, g.wires, n) @ g.eigvals)
    for p in read.other:
        g = _generator(program.gates[p])
        frame = read.frame
        word = _pauli_word(program, p, n, {w: frame[w] for w in g.wires if w in frame})
        if word is not None:  # G is one Pauli word: G ψ is a signed gather of ψ
            index, phases = word
            applied = psi[:, index] * phases
            overlap = (np.conj(lam).reshape(repeat, batch, size) * applied[None]).sum(axis=-1)
            out[p] = -2 * np.imag(overlap.reshape(-1))
            continue
        undo = [ArrayGate("dense", (v,), frame[v].conj().T) for v in g.wires if v in frame]
        rotation = undo + ([ArrayGate("dense", g.wires, g.basis)] if g.basis is not None else [])
        w = product(
            kernel.apply_all(lam.copy(), rotation, n), kernel.apply_all(psi.copy(), rotation, n)
        )
        out[p] = -2 * np.imag(marginal(w, g.wires, n) @ g.eigvals)
    return out


_PAULIS = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]]),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def _pauli_word(
    program: Program, p: int, n: int, frame: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Gate ``p``'s generator, in the frame the states are in on its wires, as
    ``G ψ = phases * ψ[:, index]`` when it is one Pauli word (IsingXX, IsingYY, ...,
    and the frames of one-wire rotations keep it one), else ``None``.

    Built once per program and frame; reading such a derivative needs no basis
    change of copies of ψ and λ.
    """
    cache = program.__dict__.setdefault("_pauli_words", {})
    key = (p, tuple((w, basis.tobytes()) for w, basis in sorted(frame.items())))
    if key not in cache:
        cache[key] = _build_pauli_word(program.gates[p].op, n, frame)
    return cache[key]


def _build_pauli_word(op, n: int, frame: dict[int, np.ndarray]):
    try:
        rep = op.generator().pauli_rep
    except Exception:  # no usable generator form: the general read does it
        return None
    if rep is None or len(rep) != 1:
        return None
    ((word, coeff),) = rep.items()
    letters = {}
    for wire, letter in word.items():
        # states rotated by V on this wire: <λ|G|ψ> = <Vλ| V P V† |Vψ> for the Pauli P
        basis = frame.get(int(wire))
        if basis is None:
            letters[int(wire)] = letter
            continue
        rotated = basis @ _PAULIS[letter] @ basis.conj().T
        parts = {a: np.trace(m.conj().T @ rotated) / 2 for a, m in _PAULIS.items()}
        nonzero = [(a, c) for a, c in parts.items() if abs(c) > 1e-12]
        if len(nonzero) != 1:
            return None
        ((letter, factor),) = nonzero
        coeff = coeff * factor
        letters[int(wire)] = letter
    k = np.arange(2**n)
    flip = 0
    phases = np.full(2**n, complex(coeff))
    for wire, letter in letters.items():
        bit = n - 1 - wire
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


def _backward_planned(kernel, bound: BoundProgram, psi, lam, trainable: frozenset[int]):
    """:func:`backward` on one encoded plan: ψ and λ stacked, one kernel call per step."""
    lay, values = source(bound)
    plan, reads = lay.plan(("backward", trainable), lambda lay: _backward_plan(lay, trainable))
    real, imag = plan.values(values, np.finfo(psi.dtype).dtype)
    batch = psi.shape[0]
    states = np.concatenate([psi, lam])  # rows of λ reuse ψ's matrices (row % batch)
    n = bound.program.num_wires
    grads = {}
    for step, read in enumerate(reads):
        plan.apply(states, step, real, imag)
        grads.update(_read(kernel, states[:batch], states[batch:], bound.program, read, n))
    return grads
