"""Translate PennyLane tapes into qsim circuits.

A tape becomes a :class:`GatePlan`: the qsim gates, their qubits and their moments,
fixed by the tape's structure (gate names, wires, control values) and not by its
parameters. Tapes that differ only in parameters share one plan; binding a tape to a
plan (:meth:`GatePlan.bind`) only computes each gate's qsim arguments, and each point
of a parameter sweep (each tape, and each element of a parameter-broadcast tape)
then costs one pass over the plan.

Qubit order: PennyLane wire ``i`` of an ``n``-wire tape is qsim qubit ``n - 1 - i``.
qsim numbers amplitudes with qubit 0 as the least significant bit, so its state
vector is then in PennyLane's (big-endian) order, and a PennyLane matrix on wires
``(w0, w1, ...)`` is a qsim matrix gate on qubits ``(n-1-w0, n-1-w1, ...)`` as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pennylane as qml
import qsimcirq
from pennylane.exceptions import DeviceError
from pennylane.operation import Operator, StatePrepBase
from pennylane.ops.op_math import Controlled
from pennylane.tape import QuantumScript

from qstore_pl.exceptions import InvalidParameterError

QSIM = qsimcirq.qsim  # the pybind module built for this CPU's SIMD instructions

#: Widest gate given to qsim as a matrix (qsim's matrix gates and fuser stop at 6).
MAX_MATRIX_WIRES = 6


@dataclass(frozen=True)
class _Param:
    """A qsim gate parameter: ``scale * data[index] + offset`` of the PennyLane gate."""

    name: str
    index: int | None  # None: the constant ``offset``
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class _Native:
    """One qsim gate of a PennyLane gate's translation."""

    kind: Any  # a qsim GateKind
    targets: tuple[int, ...]  # positions in the PennyLane gate's wires
    params: tuple[_Param, ...] = ()


def _angle(index: int = 0) -> tuple[_Param, ...]:
    return (_Param("phi", index),)


def _power(global_shift: float) -> tuple[_Param, ...]:
    # cirq's XPowGate family: exp(i pi t s) * (gate ** t) with t = angle / pi
    return _Param("exponent", 0, 1 / np.pi), _Param("global_shift", None, offset=global_shift)


_ONE = (0,)
_TWO = (0, 1)
_THREE = (0, 1, 2)

#: PennyLane gates with an exact qsim equivalent, global phase included (qsim's
#: ``krx`` is PennyLane's RX; ``IsingZZ(a) = exp(-ia/2) ZZPowGate(a/pi)``; ...).
NATIVE_GATES: dict[str, tuple[_Native, ...]] = {
    "PauliX": (_Native(QSIM.kX, _ONE),),
    "PauliY": (_Native(QSIM.kY, _ONE),),
    "PauliZ": (_Native(QSIM.kZ, _ONE),),
    "Hadamard": (_Native(QSIM.kH, _ONE),),
    "S": (_Native(QSIM.kS, _ONE),),
    "T": (_Native(QSIM.kT, _ONE),),
    "SX": (
        _Native(
            QSIM.kXPowGate,
            _ONE,
            (_Param("exponent", None, offset=0.5), _Param("global_shift", None)),
        ),
    ),
    "RX": (_Native(QSIM.krx, _ONE, _angle()),),
    "RY": (_Native(QSIM.kry, _ONE, _angle()),),
    "RZ": (_Native(QSIM.krz, _ONE, _angle()),),
    "PhaseShift": (_Native(QSIM.kZPowGate, _ONE, _power(0.0)),),
    "U1": (_Native(QSIM.kZPowGate, _ONE, _power(0.0)),),
    # Rot(a, b, c) = RZ(c) RY(b) RZ(a); qsim's fuser merges the three again
    "Rot": (
        _Native(QSIM.krz, _ONE, _angle(0)),
        _Native(QSIM.kry, _ONE, _angle(1)),
        _Native(QSIM.krz, _ONE, _angle(2)),
    ),
    "CNOT": (_Native(QSIM.kCX, _TWO),),
    "CZ": (_Native(QSIM.kCZ, _TWO),),
    "SWAP": (_Native(QSIM.kSWAP, _TWO),),
    "ISWAP": (_Native(QSIM.kISWAP, _TWO),),
    "IsingXX": (_Native(QSIM.kXXPowGate, _TWO, _power(-0.5)),),
    "IsingYY": (_Native(QSIM.kYYPowGate, _TWO, _power(-0.5)),),
    "IsingZZ": (_Native(QSIM.kZZPowGate, _TWO, _power(-0.5)),),
    "Toffoli": (_Native(QSIM.kCCX, _THREE),),
    "CCZ": (_Native(QSIM.kCCZ, _THREE),),
    "CSWAP": (_Native(QSIM.kCSwapGate, _THREE),),
}

#: Gates that change nothing qsim simulates.
_NO_OP = frozenset({"Identity"})


@dataclass(frozen=True)
class GateStep:
    """One qsim gate of a plan.

    Attributes
    ----------
    op_index : int
        Position of the PennyLane operation it comes from.
    time : int
        qsim moment; gates of one moment act on disjoint qubits.
    qubits : tuple[int, ...]
        qsim qubits the gate acts on (controls excluded).
    kind : GateKind or None
        qsim gate kind, or ``None`` for a matrix gate.
    params : tuple[_Param, ...]
        How a native gate's qsim parameters follow from the operation's.
    matrix : Callable or None
        For a matrix gate: the operation -> its matrix (batched if broadcast).
    of_base : bool
        Whether ``params`` read the parameters of the operation's base gate.
    controls, control_values : tuple[int, ...]
        Control qubits and the values they must have.
    """

    op_index: int
    time: int
    qubits: tuple[int, ...]
    kind: Any
    params: tuple[_Param, ...] = ()
    matrix: Callable[[Operator], Any] | None = None
    of_base: bool = False
    controls: tuple[int, ...] = ()
    control_values: tuple[int, ...] = ()


def structure_key(tape: QuantumScript) -> Hashable:
    """A key equal for tapes whose operations translate to the same gate plan.

    The plan depends on the number of wires, gate names, wires, and for controlled
    gates on which wires are controls and their control values; never on parameters.
    """
    return tape.num_wires, tuple(_op_key(op) for op in tape.operations)


def _op_key(op: Operator) -> Hashable:
    if isinstance(op, Controlled):  # reads stored wires: Controlled.wires concatenates
        return op.name, op.base.wires.labels, op.control_wires.labels, tuple(op.control_values)
    return op.name, op.wires.labels


def is_translatable(op: Operator) -> bool:
    """Whether :func:`build_plan` can translate ``op`` without decomposing it."""
    if op.name in NATIVE_GATES or op.name in _NO_OP or op.name == "GlobalPhase":
        return True
    if isinstance(op, Controlled) and len(op.base.wires) > 0:
        return op.base.name in NATIVE_GATES or _fits_matrix(op.base)
    return _fits_matrix(op)


def _fits_matrix(op: Operator) -> bool:
    return op.has_matrix and 0 < len(op.wires) <= MAX_MATRIX_WIRES


def build_plan(tape: QuantumScript) -> GatePlan:
    """The gate plan of a tape; wire ``tape.wires[i]`` becomes qsim qubit ``n - 1 - i``.

    Raises
    ------
    DeviceError
        If an operation cannot be translated (preprocessing decomposes those).
    """
    n = tape.num_wires
    index = {wire: i for i, wire in enumerate(tape.wires)}

    def qubits(wires) -> tuple[int, ...]:
        return tuple(n - 1 - index[w] for w in wires)

    initial = None
    steps: list[GateStep] = []
    for i, op in enumerate(tape.operations):
        if i == 0 and isinstance(op, StatePrepBase):
            initial = _initial_state_fn(op, index)
        else:
            steps.extend(_translate(i, op, qubits))
    # a circuit on no wire still carries a global phase: give qsim one qubit for it
    width = max(n, 1)
    return GatePlan(width, _schedule(steps, width), initial)


def _translate(i: int, op: Operator, qubits: Callable) -> list[GateStep]:
    if op.name in _NO_OP:
        return []
    if op.name == "GlobalPhase":  # acts on no wire in particular: put it on qubit 0
        return [GateStep(i, 0, (0,), None, matrix=_global_phase_matrix)]
    if op.name in NATIVE_GATES:
        return _native_steps(i, NATIVE_GATES[op.name], qubits(op.wires), of_base=False)
    if isinstance(op, Controlled) and len(op.base.wires) > 0:
        base = op.base
        if base.name in NATIVE_GATES:
            steps = _native_steps(i, NATIVE_GATES[base.name], qubits(base.wires), of_base=True)
        elif _fits_matrix(base):
            steps = [GateStep(i, 0, qubits(base.wires), None, matrix=_base_matrix)]
        else:
            raise DeviceError(f"cannot translate {op} to qsim: its target gate is too wide")
        controls = qubits(op.control_wires)
        values = tuple(int(v) for v in op.control_values)
        return [replace(s, controls=controls, control_values=values) for s in steps]
    if _fits_matrix(op):
        return [GateStep(i, 0, qubits(op.wires), None, matrix=_matrix)]
    raise DeviceError(
        f"cannot translate {op} to qsim: it has no matrix on at most {MAX_MATRIX_WIRES} wires"
    )


def _native_steps(
    i: int, recipe: tuple[_Native, ...], wires: tuple[int, ...], of_base: bool
) -> list[GateStep]:
    return [
        GateStep(i, 0, tuple(wires[t] for t in gate.targets), gate.kind, gate.params, None, of_base)
        for gate in recipe
    ]


def _matrix(op: Operator) -> np.ndarray:
    return np.asarray(qml.math.to_numpy(op.matrix()))


def _base_matrix(op: Operator) -> np.ndarray:
    return _matrix(op.base)


def _global_phase_matrix(op: Operator) -> np.ndarray:
    phase = np.exp(-1j * _number(op.data[0], op))
    return np.multiply.outer(phase, np.eye(2))


def _schedule(steps: list[GateStep], n: int) -> tuple[GateStep, ...]:
    """Steps with their moments, sorted by moment as qsim requires.

    A gate's moment is one past the latest moment on any of its qubits. Sorting
    is stable and gates sharing a qubit have increasing moments, so their order
    is kept; only gates on disjoint qubits (which commute) are reordered.
    """
    free = [0] * n
    timed = []
    for step in steps:
        touched = step.qubits + step.controls
        time = max(free[q] for q in touched)
        for q in touched:
            free[q] = time + 1
        timed.append(replace(step, time=time))
    timed.sort(key=lambda s: s.time)
    return tuple(timed)


def _initial_state_fn(op: Operator, index: dict) -> Callable[[Operator], list]:
    """The qsim initial states (one per sweep point) of a state preparation."""
    n = len(index)
    if op.name == "BasisState":
        weights = np.array([1 << (n - 1 - index[w]) for w in op.wires], dtype=np.int64)

        def basis(prep: Operator) -> list:
            bits = np.asarray(qml.math.to_numpy(prep.data[0])).astype(np.int64)
            return np.atleast_1d(bits @ weights).tolist()  # qsim takes the index

        return basis

    def vector(prep: Operator) -> list:
        prep = prep.map_wires(index)
        state = np.asarray(qml.math.to_numpy(prep.state_vector(wire_order=range(n))))
        state = state.reshape(-1, 2**n).astype(np.complex64)
        if not np.all(np.isfinite(state)):
            raise InvalidParameterError(f"{prep.name} has a non-finite amplitude")
        return [np.ascontiguousarray(s).view(np.float32) for s in state]

    return vector


@dataclass(frozen=True)
class GatePlan:
    """The qsim translation of one tape structure.

    Attributes
    ----------
    num_qubits : int
        Width of the simulated state.
    steps : tuple[GateStep, ...]
        qsim gates in the order qsim takes them.
    initial_state : Callable or None
        For a tape starting with a state preparation: the operation -> one qsim
        initial state per sweep point (a basis-state index or a float32 vector).
    """

    num_qubits: int
    steps: tuple[GateStep, ...]
    initial_state: Callable[[Operator], list] | None = None

    def bind(self, tape: QuantumScript) -> BoundPlan:
        """The plan with the parameters of ``tape`` (which must have its structure).

        Raises
        ------
        InvalidParameterError
            If a parameter is NaN or infinite, or a rotation angle is complex.
        """
        ops = tape.operations
        args = [_arguments(step, ops[step.op_index]) for step in self.steps]
        initial = self.initial_state(ops[0]) if self.initial_state else None
        return BoundPlan(self, args, initial, tape.batch_size)


def _arguments(step: GateStep, op: Operator) -> tuple[bool, Any]:
    """``(batched, args)``: the qsim arguments of one gate, per point if ``batched``."""
    if step.kind is None:  # matrix: row-major, interleaved real and imaginary parts
        assert step.matrix is not None  # a step without a qsim kind is a matrix gate
        matrix = np.asarray(step.matrix(op), dtype=np.complex128)
        if not np.all(np.isfinite(matrix)):
            raise _non_finite(op)
        flat = matrix.reshape(*matrix.shape[:-2], -1).view(np.float64)
        return matrix.ndim == 3, flat.tolist()
    data = (op.base if step.of_base else op).data
    values = {
        p.name: p.offset if p.index is None else p.scale * _number(data[p.index], op) + p.offset
        for p in step.params
    }
    sizes = {len(v) for v in values.values() if isinstance(v, np.ndarray)}
    if not sizes:
        return False, values
    columns = {k: np.broadcast_to(v, (max(sizes),)).tolist() for k, v in values.items()}
    return True, [dict(zip(columns, point)) for point in zip(*columns.values())]


def _number(value: Any, op: Operator) -> float | np.ndarray:
    """A gate parameter as a finite Python float, or a float array if broadcast."""
    if isinstance(value, float):  # numpy float64 included: the common case, kept fast
        if not math.isfinite(value):
            raise _non_finite(op)
        return value
    array = np.asarray(qml.math.to_numpy(value))
    if np.iscomplexobj(array):
        if np.any(array.imag != 0):
            raise InvalidParameterError(
                f"{op.name} on wires {op.wires.tolist()} has a complex parameter "
                f"{array.tolist()}; qsim takes real angles"
            )
        array = array.real
    if not np.all(np.isfinite(array)):
        raise _non_finite(op)
    return array.astype(float) if array.ndim else float(array)


def _non_finite(op: Operator) -> InvalidParameterError:
    values = [np.asarray(qml.math.to_numpy(d)).tolist() for d in op.data]
    return InvalidParameterError(
        f"{op.name} on wires {op.wires.tolist()} has a non-finite parameter: {values}"
    )


class BoundPlan:
    """A gate plan with the parameters of one tape: one qsim circuit per sweep point.

    Parameters
    ----------
    plan : GatePlan
        The tape's plan.
    args : list[tuple[bool, Any]]
        Per step: whether its arguments are per point, and the arguments.
    initial : list or None
        qsim initial state per point, or ``None`` to start from ``|0...0>``.
    batch_size : int or None
        The tape's broadcast size (``None``: one unbatched point).
    """

    def __init__(
        self, plan: GatePlan, args: list[tuple[bool, Any]], initial: list | None, batch_size
    ):
        self.plan = plan
        self._args = args
        self._initial = initial
        self.batch_size = batch_size

    @property
    def num_points(self) -> int:
        """Number of circuits to simulate."""
        return self.batch_size or 1

    def initial_state(self, point: int) -> int | np.ndarray:
        """qsim's initial state for ``point``: a basis index or a float32 vector."""
        if self._initial is None:
            return 0
        return self._initial[point if len(self._initial) > 1 else 0]

    def circuit(self, point: int) -> Any:
        """The qsim circuit of sweep point ``point``."""
        circuit = QSIM.Circuit()
        circuit.num_qubits = self.plan.num_qubits
        add_gate, add_matrix_gate, control = (
            QSIM.add_gate,
            QSIM.add_matrix_gate,
            QSIM.control_last_gate,
        )
        for step, (batched, args) in zip(self.plan.steps, self._args):
            arg = args[point] if batched else args
            if step.kind is None:
                add_matrix_gate(step.time, step.qubits, arg, circuit)
            else:
                add_gate(step.kind, step.time, step.qubits, arg, circuit)
            if step.controls:
                control(step.controls, step.control_values, circuit)
        return circuit
