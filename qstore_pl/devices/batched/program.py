"""Compile a group of same-structure circuits into a batched program.

A :class:`Program` is built once per circuit structure and holds what does not depend
on parameter values: each gate's kind (permutation, diagonal, dense matrix), its
generator for derivatives, and the schedule of the adjoint backward sweep. Binding a
group of tapes to it (:meth:`Program.bind`) gathers every gate's parameters into one
column per gate, ``B`` circuits long, where ``B`` counts every circuit of the group,
parameter broadcasting included.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.operation import Operator, StatePrepBase
from pennylane.ops.qubit.attributes import diagonal_in_z_basis
from pennylane.tape import QuantumScript

from qstore_pl.devices.batched.gate_matrices import DENSE, DIAGONAL
from qstore_pl.devices.batched.permutations import Gather
from qstore_pl.devices.grouping import broadcast_layout
from qstore_pl.exceptions import InvalidParameterError


@dataclass(frozen=True)
class Generator:
    """A gate's generator G, with U(θ) = exp(iθG), as a basis change and a diagonal.

    ``G = V† diag(eigvals) V`` on the gate's wires. ``basis`` is ``None`` when G is
    already diagonal in the computational basis.
    """

    wires: tuple[int, ...]
    eigvals: np.ndarray
    basis: np.ndarray | None
    matrix: np.ndarray

    @property
    def single_wire(self) -> bool:
        """Whether G acts on one wire."""
        return len(self.wires) == 1


@dataclass
class GateTemplate:
    """One gate of a program: what kind of array operation applies it.

    Attributes
    ----------
    index : int
        Position among the circuit's operations.
    name : str
        PennyLane name.
    wires : tuple[int, ...]
        Wires on ``0 .. n-1``.
    kind : {"perm", "diag", "dense"}
        How the gate acts: a permutation of basis states, a diagonal, or a matrix.
    op : Operator
        The first circuit's instance, for matrices and generators.
    num_params : int
        Number of parameters.
    generator : Generator or None
        For one-parameter gates with a generator: what derivatives need.
    class_matrix : bool
        Whether the operator's class builds matrices for a whole parameter column
        (PennyLane's standard gates); others are asked instance by instance.
    """

    index: int
    name: str
    wires: tuple[int, ...]
    kind: str
    op: Operator
    num_params: int
    generator: Generator | None = None
    class_matrix: bool = True
    fixed_perm: Gather | None = field(default=None, repr=False)
    fixed_diag: np.ndarray | None = field(default=None, repr=False)
    fixed_matrix: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def inverse_perm(self) -> ArrayGate:
        """The inverse of a fixed permutation gate, once per structure."""
        return ArrayGate("perm", self.wires, self.fixed_perm, self.fixed_matrix).inverse()

    def kwargs(self, method: str) -> dict:
        """The hyperparameters ``type(op).<method>`` accepts (they differ per gate)."""
        cache = self.__dict__.setdefault("_kwargs", {})
        if method not in cache:
            accepted = inspect.signature(getattr(type(self.op), method)).parameters
            takes_all = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
            cache[method] = {
                k: v for k, v in self.op.hyperparameters.items() if takes_all or k in accepted
            }
        return cache[method]


@dataclass(frozen=True)
class ArrayGate:
    """A gate as an array operation: what kernels apply.

    ``value`` is a gather index (``"perm"``), a diagonal (``"diag"``: ``(2**k,)`` or
    ``(B, 2**k)``) or a matrix (``"dense"``: ``(d, d)`` or ``(B, d, d)``).
    """

    kind: str
    wires: tuple[int, ...]
    value: Any  # by kind: a Gather or index array ("perm"), else an np.ndarray
    local: np.ndarray | None = None  # a permutation's matrix on its wires

    @property
    def per_row(self) -> bool:
        """Whether each circuit has its own diagonal or matrix."""
        return self.kind != "perm" and self.value.ndim == (2 if self.kind == "diag" else 3)

    def inverse(self) -> ArrayGate:
        """The adjoint gate."""
        if self.kind == "perm":
            local = None if self.local is None else self.local.T
            value = self.value
            inverse = value.inverse() if isinstance(value, Gather) else np.argsort(value)
            return ArrayGate("perm", self.wires, inverse, local)
        if self.kind == "diag":
            return ArrayGate("diag", self.wires, np.conj(self.value))
        return ArrayGate("dense", self.wires, np.conj(np.swapaxes(self.value, -1, -2)))

    def as_dense(self) -> ArrayGate:
        """The same one-wire gate as a ``2x2`` matrix (for fusing)."""
        if self.kind == "dense":
            return self
        d = self.value
        m = np.zeros((*d.shape[:-1], 2, 2), dtype=complex)
        m[..., 0, 0], m[..., 1, 1] = d[..., 0], d[..., 1]
        return ArrayGate("dense", self.wires, m)


@dataclass
class BoundGate:
    """A gate with its parameters for every circuit of a batch.

    ``params`` holds one array per gate parameter, of shape ``(B,)`` (or ``(B, ...)``
    for matrix-valued parameters), or ``None`` for gates without parameters.
    ``shared`` is true when every circuit uses the same values (then only row 0 is
    used and kernels apply one matrix to the whole batch).
    """

    template: GateTemplate
    params: list[np.ndarray] | None
    shared: bool
    ops: list[Operator] | None = None  # each tape's instance, for matrices built per tape
    sizes: list[int] | None = None  # circuits per tape
    _arrays: dict = field(default_factory=dict, repr=False)

    @property
    def wires(self) -> tuple[int, ...]:
        return self.template.wires

    @property
    def kind(self) -> str:
        return self.template.kind

    def array(self, inverse: bool = False) -> ArrayGate:
        """The gate (or its adjoint) as an array operation, computed once."""
        if inverse not in self._arrays:
            gate = self._arrays[False] if False in self._arrays else self._build()
            self._arrays[False] = gate
            if inverse:
                t = self.template
                self._arrays[True] = t.inverse_perm if t.kind == "perm" else gate.inverse()
        return self._arrays[inverse]

    def _build(self) -> ArrayGate:
        t = self.template
        if t.kind == "perm":
            return ArrayGate("perm", t.wires, t.fixed_perm, t.fixed_matrix)
        if t.fixed_diag is not None:
            return ArrayGate("diag", t.wires, t.fixed_diag)
        if t.fixed_matrix is not None:
            return ArrayGate("dense", t.wires, t.fixed_matrix)
        if not t.class_matrix:
            return ArrayGate(t.kind, t.wires, self._matrix_per_tape())
        assert self.params is not None, "a gate without fixed matrices has parameters"
        params = [p[0] for p in self.params] if self.shared else self.params
        if t.kind == "diag":
            build = DIAGONAL.get(t.name)
            value = (
                build(np.asarray(params[0], dtype=float))
                if build is not None
                else type(t.op).compute_eigvals(*params, **t.kwargs("compute_eigvals"))
            )
        else:
            build = DENSE.get(t.name)
            value = (
                build(np.asarray(params[0], dtype=float))
                if build is not None
                else type(t.op).compute_matrix(*params, **t.kwargs("compute_matrix"))
            )
        return ArrayGate(t.kind, t.wires, np.asarray(value, dtype=complex))

    def _matrix_per_tape(self) -> np.ndarray:
        """Operators whose class gives no batched matrix: ask each instance."""
        assert self.ops is not None and self.sizes is not None, "set for such gates"
        if self.shared:
            value = np.asarray(qml.matrix(self.ops[0]), np.complex128)
        else:
            value = np.concatenate(
                [
                    np.broadcast_to(m, (size, *m.shape[-2:]))
                    for op, size in zip(self.ops, self.sizes)
                    for m in [np.asarray(qml.matrix(op), np.complex128)]
                ]
            )
        if self.template.kind == "diag":
            return np.diagonal(value, axis1=-2, axis2=-1).copy()
        return value


def _fixed_kind(op: Operator) -> tuple[str, np.ndarray]:
    matrix = np.asarray(op.matrix(), complex)
    if np.allclose(matrix, np.diag(np.diagonal(matrix)), atol=0):
        return "diag", np.diagonal(matrix).copy()
    magnitudes = np.abs(matrix)
    if np.all((magnitudes == 0) | (magnitudes == 1)) and np.all(magnitudes.sum(axis=0) == 1):
        if np.all(matrix[magnitudes == 1] == 1):
            # column j has its 1 in row perm_local[j]: |j> -> |perm_local[j]>
            return "perm", np.argmax(magnitudes, axis=0)
    return "dense", matrix


def _standard_gate(op: Operator, kind: str) -> bool:
    method = "compute_eigvals" if kind == "diag" else "compute_matrix"
    overridden = getattr(type(op), method) is not getattr(Operator, method)
    return overridden and type(op).__module__.startswith("pennylane.ops.qubit")


_BASES: dict[bytes, np.ndarray] = {}


#: a standard gate's generator (eigenvalues, basis, matrix) by class and width: in the
#: gate's own wire order it depends on neither the angle nor the wires, and building
#: it through ``qml.matrix`` cost ~1.3 ms a gate (0.2 s of a 20-qubit W1 first call)
_GENERATORS: dict[tuple[type, int], tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}


def _generator(op: Operator) -> Generator | None:
    if op.num_params != 1 or not op.has_generator:
        return None
    standard = not op.hyperparameters and type(op).__module__.startswith("pennylane.ops.qubit")
    key = (type(op), len(op.wires))
    parts = _GENERATORS.get(key) if standard else None
    if parts is None:
        parts = _generator_parts(op)
        if standard:
            _GENERATORS[key] = parts
    return Generator(tuple(op.wires), *parts)


def _generator_parts(op: Operator) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``op``'s generator as eigenvalues, basis (``None``: diagonal) and matrix, in its
    own wire order (read-only: gates of one class share them)."""
    g = np.asarray(qml.matrix(op.generator(), wire_order=op.wires), complex)
    if np.allclose(g, np.diag(np.diagonal(g)), atol=1e-14):
        parts: tuple = (np.real(np.diagonal(g)).copy(), None, g)
    else:
        eigvals, vectors = np.linalg.eigh(g)
        basis = np.conj(vectors.T)
        # one array per distinct basis, so that equal bases compare with `is`
        basis = _BASES.setdefault(np.round(basis, 12).tobytes(), basis)
        parts = (eigvals, basis, g)
    for array in parts:
        if array is not None:
            array.flags.writeable = False
    return parts


class Program:
    """The structure of a group of circuits, compiled for batched simulation.

    Parameters
    ----------
    tape : QuantumScript
        A representative circuit on wires ``0 .. n-1``.
    """

    def __init__(self, tape: QuantumScript):
        self.num_wires = max(len(tape.wires), 1)
        ops = list(tape.operations)
        # decompose keeps a leading state preparation; it sets the initial states
        self.has_state_prep = bool(ops) and isinstance(ops[0], StatePrepBase)
        self.measurements = list(tape.measurements)
        self.gates: list[GateTemplate] = []
        self.phase_gates: list[int] = []  # GlobalPhase positions
        for index, op in enumerate(ops):
            if index == 0 and self.has_state_prep:
                continue
            if op.name == "GlobalPhase":
                self.phase_gates.append(index)
                continue
            if op.name == "Identity":
                continue
            self.gates.append(self._template(index, op))
        self.num_ops = len(ops)
        # operations with parameters (gates, state preparation, global phase)
        self.param_ops = tuple(i for i, op in enumerate(ops) if op.data)
        self.slot = {i: j for j, i in enumerate(self.param_ops)}  # op index -> param_ops
        # the tape numbers parameters operation by operation: (operation, parameter)
        self.param_owner = [(i, k) for i, op in enumerate(ops) for k in range(len(op.data))]
        # operation index -> position in self.gates
        self.position = {t.index: p for p, t in enumerate(self.gates)}

    def _template(self, index: int, op: Operator) -> GateTemplate:
        wires = tuple(int(w) for w in op.wires)
        if op.num_params == 0:
            kind, value = _fixed_kind(op)
            t = GateTemplate(index, op.name, wires, kind, op, 0)
            if kind == "perm":
                t.fixed_perm = Gather(value, wires, self.num_wires)
                t.fixed_matrix = np.asarray(op.matrix(), complex)
            elif kind == "diag":
                t.fixed_diag = value
            else:
                t.fixed_matrix = value
            return t
        kind = "diag" if op.name in diagonal_in_z_basis else "dense"
        t = GateTemplate(index, op.name, wires, kind, op, op.num_params, _generator(op))
        t.class_matrix = op.name in DENSE or op.name in DIAGONAL or _standard_gate(op, kind)
        return t

    def bind(self, tapes: Sequence[QuantumScript]) -> BoundProgram:
        """Gather the parameters of ``tapes`` (same structure) for batched execution."""
        return BoundProgram(self, tapes)


class BoundProgram:
    """A program with the parameters of a group of tapes.

    Attributes
    ----------
    batch : int
        Number of circuits (every tape, parameter broadcasting included).
    slices : list[slice]
        Which circuits belong to which tape.
    gates : list[BoundGate]
        The program's gates with their parameter columns.
    """

    def __init__(self, program: Program, tapes: Sequence[QuantumScript]):
        self.program = program
        self.tapes = list(tapes)
        self._set_parameters([tape_parameters(tape, program.param_ops) for tape in tapes])
        sizes = self.sizes
        self.global_phase = self._global_phase(tapes, sizes)
        self.initial_state = self._initial_state(tapes, sizes)

    @classmethod
    def from_table(
        cls,
        program: Program,
        parameters: TapeParameters,
        initial_state: np.ndarray | None = None,
    ) -> BoundProgram:
        """A binding of one parameter table, with no tape behind it.

        Layers fill the table straight from their input and weight arrays.
        ``initial_state`` (``(B, 2**n)``) replaces ``|0...0>``. The program must have
        no state preparation, no global phase and no operator whose matrix only its
        instance can build (``class_matrix``).
        """
        if program.has_state_prep or program.phase_gates:
            raise ValueError("a parameter table cannot bind state preparations or global phases")
        bound = cls.__new__(cls)
        bound.program = program
        bound.tapes = []
        bound._set_parameters([parameters])
        bound.global_phase = None
        bound.initial_state = initial_state
        return bound

    def _set_parameters(self, params: list[TapeParameters]) -> None:
        program = self.program
        self.parameters = params
        #: each tape's broadcast size (``None``: not broadcast), as ``tape.batch_size``
        self.batch_sizes = [p.size for p in params]
        sizes = [p.size or 1 for p in params]
        self.batch = int(sum(sizes))
        bounds = np.cumsum([0, *sizes])
        self.slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self.sizes = sizes
        single_tape = len(params) == 1
        # per gate of the program: whether each circuit has its own parameters (a
        # broadcast parameter, or several tapes) or the batch shares them
        per_row = []
        for t in program.gates:
            if t.num_params == 0:
                per_row.append(False)
                continue
            j = program.slot[t.index]
            per_row.append(not single_tape or any(params[0].broadcast[j]))
        self.per_row = tuple(per_row)

    def column(self, op_index: int, k: int) -> np.ndarray:
        """Parameter ``k`` of operation ``op_index`` for every circuit: ``(B, ...)``.

        ``(1, ...)`` when the batch shares it (one tape, not broadcast).
        """
        j = self.program.slot[op_index]
        values = [p.data[j][k] for p in self.parameters]
        broadcast = [p.broadcast[j][k] for p in self.parameters]
        if len(values) == 1 and not broadcast[0]:
            return np.asarray(values[0])[None]
        return np.concatenate(
            [
                np.asarray(v) if b else np.asarray(v)[None].repeat(s, axis=0)
                for v, b, s in zip(values, broadcast, self.sizes)
            ]
        )

    @cached_property
    def gates(self) -> list[BoundGate]:
        """Every gate of the program with its parameter columns."""
        gates = []
        for p, t in enumerate(self.program.gates):
            if t.num_params == 0:
                gates.append(BoundGate(t, None, True))
                continue
            columns = [self.column(t.index, k) for k in range(t.num_params)]
            for column in columns:
                _check_finite(column, t)
            ops = [tape.operations[t.index] for tape in self.tapes]
            gates.append(BoundGate(t, columns, not self.per_row[p], ops, self.sizes))
        return gates

    def _global_phase(self, tapes, sizes) -> np.ndarray | None:
        if not self.program.phase_gates:
            return None
        phases = []
        for tape, size in zip(tapes, sizes):
            phi = sum(np.asarray(tape.operations[i].data[0]) for i in self.program.phase_gates)
            phases.append(np.broadcast_to(np.exp(-1j * phi), (size,)))
        return np.concatenate(phases)

    def _initial_state(self, tapes, sizes) -> np.ndarray | None:
        if not self.program.has_state_prep:
            return None
        n = self.program.num_wires
        states = []
        for tape, size in zip(tapes, sizes):
            op = tape.operations[0]
            state = np.asarray(op.state_vector(wire_order=range(n)), complex)
            states.append(np.broadcast_to(state.reshape(-1, 2**n), (size, 2**n)))
        return np.concatenate(states)


@dataclass
class TapeParameters:
    """The parameters of a tape's parametrized operations, and how they broadcast.

    Attributes
    ----------
    size : int or None
        The tape's broadcast size (what ``tape.batch_size`` says), ``None`` if none.
    data : list[tuple]
        ``op.data`` of each operation in ``Program.param_ops``.
    broadcast : list[tuple[bool, ...]]
        Per operation and parameter: whether it carries the broadcast axis.
    """

    size: int | None
    data: list[tuple]
    broadcast: list[tuple[bool, ...]]


def tape_parameters(tape: QuantumScript, param_ops: Sequence[int]) -> TapeParameters:
    """The parameters of ``tape``'s operations at ``param_ops`` and how they broadcast
    (read once per tape, shared with the router: :func:`broadcast_layout`)."""
    size, flags = broadcast_layout(tape)
    ops = tape.operations
    return TapeParameters(size, [ops[i].data for i in param_ops], [flags[i] for i in param_ops])


def _check_finite(column: np.ndarray, template: GateTemplate) -> None:
    if column.dtype.kind in "fc" and not np.all(np.isfinite(column)):
        raise InvalidParameterError(
            f"{template.name} on wires {list(template.wires)} has a parameter that is not "
            "finite (NaN or infinity); fix the inputs or weights feeding the circuit"
        )
