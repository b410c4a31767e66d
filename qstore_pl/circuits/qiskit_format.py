"""Qiskit ``QuantumCircuit`` <-> PennyLane circuits, with symbolic parameters kept.

**Wire order.** Qiskit qubit ``i`` (``qc.qubits[i]``) is PennyLane wire ``i`` when
reading; when writing, ``wire_order[i]`` (by default: non-negative integer wires are
their own index, other labels are numbered in the circuit's wire order) becomes qubit
``i``. Qiskit numbers basis states little-endian (qubit 0 is the least significant
bit), PennyLane big-endian (the first wire is the most significant), so
``Operator(qc).data == qml.matrix(tape, wire_order=range(n)[::-1])``.

**Parameters.** Qiskit ``Parameter`` ``x`` is the :class:`~qstore_pl.circuits.Symbol`
``x``; element ``i`` of a ``ParameterVector`` ``w`` is ``Symbol("w", (i,))``. Linear
``ParameterExpression`` s (``2*x + 1``, ``x - w[1]``) are kept (see
:mod:`~qstore_pl.circuits.angles`: a rotation with a sum becomes a product of
rotations); anything else raises. Writing back, a symbol array of one dimension becomes
a ``ParameterVector``, a scalar a ``Parameter``, and element ``(i, j)`` of a wider one the
``Parameter`` ``"w[i,j]"``.

**Measurements.** Final ``measure`` instructions become one ``qml.counts`` (or
``sample``/``probs``, see ``measurement``) over the measured qubits in classical-bit
order; ``qml.counts``/``sample``/``probs`` without an observable become ``measure``
instructions into a classical register of that size. Mid-circuit measurements,
classical control, resets and observables raise.

**Why not just** ``qml.from_qiskit`` **(pennylane-qiskit's** ``load`` **)?** It binds every
Qiskit parameter to a number and evaluates the expression, so it cannot return a
:class:`~qstore_pl.circuits.ParametrizedCircuit`; it maps ``CRXGate`` etc. by name and
ignores open controls (``ctrl_state``); it drops instructions it does not know with a
warning; and it has no way back to Qiskit for a tape. Its gate table
(``pennylane_qiskit.converter.QISKIT_OPERATION_MAP``) is used here in both directions.
Use ``qml.from_qiskit`` for circuits with mid-circuit measurements and classical control
(it builds ``qml.measure``/``qml.cond``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pennylane as qml
from pennylane.operation import Operator
from pennylane.ops.op_math import Controlled
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits.angles import Linear, build_operators, linear_from_sympy, symbol_name
from qstore_pl.circuits.extras import import_extra
from qstore_pl.circuits.lowering import (
    MEASUREMENTS,
    circuit_or_parametrized,
    circuit_parts,
    lower,
    measured_wires,
    real_scalar,
    unwrap,
    wire_index,
)
from qstore_pl.circuits.parametrized import ParametrizedCircuit
from qstore_pl.circuits.symbol import Symbol


def _qiskit(feature: str):
    qiskit = import_extra("qiskit", "qiskit", feature)
    converter = import_extra("pennylane_qiskit.converter", "qiskit", feature)
    return qiskit, converter


# ----------------------------------------------------------------------------- reading


def from_qiskit(circuit, measurement: str | None = "counts") -> QuantumScript | ParametrizedCircuit:
    """A Qiskit ``QuantumCircuit`` as a PennyLane tape, or a
    :class:`~qstore_pl.circuits.ParametrizedCircuit` when it has unbound parameters.

    Parameters
    ----------
    circuit : qiskit.QuantumCircuit
        Gates of pennylane-qiskit's table (every standard gate PennyLane has), their
        controlled versions (open controls included), any other gate with numeric
        parameters (as a ``QubitUnitary``), barriers, final measurements and the
        circuit's ``global_phase`` (as ``qml.GlobalPhase``).
    measurement : {"counts", "sample", "probs"} or None
        What the final ``measure`` instructions become (one measurement over the
        measured qubits, ordered by classical bit); ``None`` ignores them.

    Returns
    -------
    QuantumScript or ParametrizedCircuit
        Qubit ``i`` is wire ``i``. Bound the same way, the result has the unitary of
        ``circuit.assign_parameters(...)``.

    Raises
    ------
    ValueError
        Naming the instruction that has no PennyLane form here (mid-circuit
        measurement, reset, control flow, a non-linear parameter expression, a
        parametrised gate outside the table) and what to do instead.
    """
    qiskit, converter = _qiskit("from_qiskit")
    if not isinstance(circuit, qiskit.QuantumCircuit):
        raise TypeError(
            f"from_qiskit expects a qiskit QuantumCircuit, got {type(circuit).__name__}"
        )
    if measurement is not None and measurement not in MEASUREMENTS:
        raise ValueError(f"measurement must be one of {sorted(MEASUREMENTS)} or None")
    reader = _Reader(qiskit, converter)
    ops: list[Operator] = []
    measured: dict[int, int] = {}  # classical bit -> wire
    for k, item in enumerate(circuit.data):
        gate = item.operation
        wires = [circuit.find_bit(q).index for q in item.qubits]
        where = f"instruction {k} ({gate.name} on qubits {wires})"
        if measured and set(wires) & set(measured.values()) and gate.name != "barrier":
            raise ValueError(
                f"{where} acts on a qubit measured before it: from_qiskit reads only final "
                "measurements; use qml.from_qiskit(circuit), which turns mid-circuit "
                "measurements into qml.measure"
            )
        if gate.name == "measure":
            measured[circuit.find_bit(item.clbits[0]).index] = wires[0]
            continue
        ops += reader.operators(gate, wires, where)
    phase = reader.angle(circuit.global_phase, "the circuit's global_phase")
    if phase.terms or phase.constant:
        ops += build_operators(lambda p: qml.GlobalPhase(p[0]), "GlobalPhase", [-phase], "phase")
    measurements = []
    if measured and measurement is not None:
        wires = [measured[c] for c in sorted(measured)]
        measurements.append(MEASUREMENTS[measurement](wires=wires))
    return circuit_or_parametrized(ops, measurements, reader.declared)


class _Reader:
    """Turns Qiskit instructions into PennyLane operators."""

    def __init__(self, qiskit, converter):
        self.qiskit = qiskit
        self.by_class = dict(converter.inv_map)  # Qiskit class name -> PennyLane name
        self.by_class["UGate"] = "U3"
        self.declared: dict[str, tuple[int, ...]] = {}  # ParameterVector lengths

    def angle(self, value, where: str) -> Linear:
        expression = self.qiskit.circuit.ParameterExpression
        if isinstance(value, expression) and value.parameters:
            for p in value.parameters:
                vector = getattr(p, "vector", None)
                if vector is not None:
                    self.declared[vector.name] = (len(vector),)
            return linear_from_sympy(value.sympify(), where)
        if isinstance(value, expression):
            value = value.numeric()
        return Linear.of(value)

    def operators(self, gate, wires: list[int], where: str) -> list[Operator]:
        library = self.qiskit.circuit
        if gate.name == "barrier":
            return [qml.Barrier(wires=wires)]
        if isinstance(gate, library.AnnotatedOperation):
            return self._annotated(gate, wires, where)
        if not isinstance(gate, library.Gate):
            raise ValueError(
                f"{where}: {gate.name} is not a unitary gate, which from_qiskit cannot read "
                "(only gates, barriers and final measurements); qml.from_qiskit handles "
                "mid-circuit measurements and classical control"
            )
        class_name = getattr(gate, "base_class", type(gate)).__name__
        if class_name == "GlobalPhaseGate":  # e^{i t} = qml.GlobalPhase(-t)
            angle = -self.angle(gate.params[0], where)
            return build_operators(lambda p: qml.GlobalPhase(p[0]), "GlobalPhase", [angle], where)
        if isinstance(gate, library.ControlledGate):
            return self._controlled(gate, wires, where)
        name = self.by_class.get(class_name)
        if name == "QubitUnitary":  # Qiskit matrices are little-endian
            return [qml.QubitUnitary(np.asarray(gate.to_matrix()), wires=wires[::-1])]
        if name is not None and name not in ("StatePrep", "Barrier"):
            cls = getattr(qml, name)
            angles = [self.angle(p, where) for p in gate.params]
            return build_operators(lambda p: cls(*p, wires=wires), name, angles, where)
        return [self._unitary(gate, wires, where)]

    def _controlled(self, gate, wires: list[int], where: str) -> list[Operator]:
        n = gate.num_ctrl_qubits
        values = [bool(gate.ctrl_state >> i & 1) for i in range(n)]
        base = self.operators(gate.base_gate, wires[n:], f"{where}, its base gate")
        flips = [qml.PauliX(w) for w, v in zip(wires[:n], values) if not v]
        class_name = getattr(gate, "base_class", type(gate)).__name__
        name = self.by_class.get(class_name)
        if name is not None and len(base) == 1 and not isinstance(base[0], qml.QubitUnitary):
            # a named PennyLane gate (CRX, Toffoli, ...) rather than Controlled(...)
            data = [p for op in base for p in op.data]
            if all(isinstance(p, Symbol) or np.isscalar(p) for p in data):
                cls = getattr(qml, name)
                return [*flips, cls(*data, wires=wires), *flips]
        if len(gate.params) != len(gate.base_gate.params):  # e.g. CUGate's control phase
            return [self._unitary(gate, wires, where)]
        ops = [qml.ctrl(op, control=wires[:n]) for op in base]
        return [*flips, *ops, *flips]

    def _annotated(self, gate, wires: list[int], where: str) -> list[Operator]:
        """``base_op`` with inverse and control modifiers; the controls of the last
        modifier come first among the qubits."""
        library = self.qiskit.circuit
        offset = sum(
            m.num_ctrl_qubits for m in gate.modifiers if isinstance(m, library.ControlModifier)
        )
        ops = self.operators(gate.base_op, wires[offset:], f"{where}, its base operation")
        for modifier in gate.modifiers:
            if isinstance(modifier, library.InverseModifier):
                ops = [qml.adjoint(op) for op in reversed(ops)]
            elif isinstance(modifier, library.ControlModifier):
                n = modifier.num_ctrl_qubits
                controls, offset = wires[offset - n : offset], offset - n
                values = [bool(modifier.ctrl_state >> i & 1) for i in range(n)]
                ops = [qml.ctrl(op, control=controls, control_values=values) for op in ops]
            else:
                raise ValueError(
                    f"{where}: the modifier {modifier} has no PennyLane form here; "
                    "decompose the circuit first (circuit.decompose())"
                )
        return ops

    def _unitary(self, gate, wires: list[int], where: str) -> Operator:
        if any(
            isinstance(p, self.qiskit.circuit.ParameterExpression) and p.parameters
            for p in gate.params
        ):
            raise ValueError(
                f"{where}: {gate.name} has no PennyLane gate and symbolic parameters; "
                "decompose it first (circuit.decompose() or transpile(circuit, "
                "basis_gates=['rz', 'sx', 'x', 'cx']))"
            )
        try:
            matrix = np.asarray(gate.to_matrix())
        except Exception as err:
            raise ValueError(
                f"{where}: {gate.name} has no PennyLane gate and no matrix ({err}); "
                "decompose it first (circuit.decompose())"
            ) from err
        return qml.QubitUnitary(matrix, wires=wires[::-1])


# ----------------------------------------------------------------------------- writing


def to_qiskit(
    circuit: QuantumScript | ParametrizedCircuit | Iterable[Operator],
    wire_order: Sequence | None = None,
    decompose: bool = False,
):
    """A PennyLane tape, :class:`~qstore_pl.circuits.ParametrizedCircuit` or operator
    list as a Qiskit ``QuantumCircuit``; Symbols become Qiskit parameters.

    Parameters
    ----------
    circuit : QuantumScript, ParametrizedCircuit or iterable of Operator
        Measurements may be ``qml.counts``/``sample``/``probs`` without an observable;
        they become ``measure`` instructions into a classical register (bit ``k``:
        the ``k``-th measured wire).
    wire_order : Sequence, optional
        Wire labels in Qiskit qubit order (see the module docstring).
    decompose : bool
        Write operators Qiskit has no gate for as their decomposition.

    Raises
    ------
    ValueError
        Naming the operator (pass ``decompose=True``) or measurement (observables need a
        Qiskit ``Estimator``: see ``pennylane_qiskit.converter.mp_to_pauli``) that has no
        ``QuantumCircuit`` form.
    """
    qiskit, converter = _qiskit("to_qiskit")
    ops, measurements, symbols = circuit_parts(circuit, "to_qiskit")
    writer = _Writer(qiskit, converter, symbols)
    ops = lower(ops, writer.supported, "Qiskit", decompose)
    all_wires = Wires.all_wires([op.wires for op in ops] + [m.wires for m in measurements])
    index = wire_index(all_wires, wire_order)
    measured = measured_wires(measurements, all_wires, "to_qiskit", "Qiskit")
    n = max(index.values(), default=-1) + 1
    qc = qiskit.QuantumCircuit(n, len(measured)) if measured else qiskit.QuantumCircuit(n)
    for op in ops:
        writer.append(qc, op, [index[w] for w in op.wires])
    for k, w in enumerate(measured):
        qc.measure(index[w], k)
    return qc


def gate_writer(feature: str):
    """What :func:`to_qiskit` appends gates with, for a simulator that drives Qiskit
    directly (numeric parameters only: no symbols are declared).

    The writer's ``supported(op)`` says whether an operator has a Qiskit gate, and
    ``append(qc, op, qubits)`` appends it on the given Qiskit qubits (one per wire of
    ``op``, in ``op.wires`` order; multi-qubit matrices are reordered to Qiskit's
    little-endian convention there).
    """
    qiskit, converter = _qiskit(feature)
    return _Writer(qiskit, converter, {})


class _Writer:
    """Appends PennyLane operators to a Qiskit circuit."""

    def __init__(self, qiskit, converter, symbols: dict):
        self.qiskit = qiskit
        self.table = dict(converter.QISKIT_OPERATION_MAP)
        self.table["ControlledPhaseShift"] = self.table["CPhase"]
        for name in ("StatePrep", "Barrier", "Adjoint(GlobalPhase)"):
            self.table.pop(name)
        self.parameters = self._parameters(symbols)

    def _parameters(self, symbols: dict) -> dict:
        library = self.qiskit.circuit
        out = {}
        for name, shape in symbols.items():
            if shape == ():
                out[(name, ())] = library.Parameter(name)
            elif len(shape) == 1:
                vector = library.ParameterVector(name, shape[0])
                out |= {(name, (i,)): vector[i] for i in range(shape[0])}
            else:
                for index in np.ndindex(*shape):
                    out[(name, index)] = library.Parameter(symbol_name(Symbol(name, index)))
        return out

    def supported(self, op: Operator) -> bool:
        if op.name in self.table or isinstance(op, qml.Barrier | qml.GlobalPhase):
            return True
        return isinstance(op, Controlled) and self.supported(op.base) and not op.work_wires

    def value(self, p, op: Operator):
        p = unwrap(p)
        if isinstance(p, Symbol):
            param = self.parameters[(p.name, p.index)]
            return param if p.scale == 1.0 else p.scale * param
        return real_scalar(p, op, "Qiskit")

    def gate(self, op: Operator):
        if isinstance(op, qml.GlobalPhase):  # qml.GlobalPhase(t) = e^{-i t}
            return self.qiskit.circuit.library.GlobalPhaseGate(-1 * self.value(op.data[0], op))
        if op.name == "QubitUnitary":  # Qiskit matrices are little-endian
            matrix = qml.matrix(op, wire_order=list(op.wires)[::-1])
            return self.qiskit.circuit.library.UnitaryGate(matrix)
        if op.name in self.table:
            return self.table[op.name](*(self.value(p, op) for p in op.data))
        ctrl_state = sum(int(v) << i for i, v in enumerate(op.control_values))
        base = self.gate(op.base)
        return base.control(len(op.control_wires), ctrl_state=ctrl_state, annotated=False)

    def append(self, qc, op: Operator, qubits: list[int]) -> None:
        if isinstance(op, qml.Barrier):
            qc.barrier(*qubits)
        elif isinstance(op, qml.GlobalPhase):
            qc.append(self.gate(op), [])
        else:
            qc.append(self.gate(op), qubits)
