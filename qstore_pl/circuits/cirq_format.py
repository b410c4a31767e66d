"""Cirq ``Circuit`` <-> PennyLane circuits, with sympy symbols kept as Symbols.

PennyLane has no Cirq converter (pennylane-cirq is a device plugin that binds numbers
at execution), so both directions are here.

**Wire order.** Writing, ``wire_order[i]`` (by default non-negative integer wires are
their own index) is ``cirq.LineQubit(i)``. Reading, ``cirq.LineQubit(x)`` is wire ``x``;
circuits on other qubits (``GridQubit``, ``NamedQubit``) get wires ``0, 1, ...`` in
Cirq's sorted qubit order. Cirq and PennyLane both put the first qubit first (most
significant), so ``circuit.unitary(qubit_order=cirq.LineQubit.range(n))`` equals
``qml.matrix(tape, wire_order=range(n))``, up to a global phase.

**Parameters.** The sympy symbol ``x`` is ``Symbol("x")``, ``"w[0]"`` is
``Symbol("w", (0,))`` (see :mod:`~qstore_pl.circuits.angles`); linear sympy expressions
are kept (a rotation by a sum becomes a product of rotations), others raise.

**Gates.** Cirq's gates are powers ``G**t`` with a global shift; they are read as the
PennyLane rotation they equal up to a phase (``XPowGate(t)`` is ``RX(pi t)``,
``ZPowGate(t)`` ``PhaseShift(pi t)``, ``XXPowGate(t)`` ``IsingXX(pi t)``,
``ISwapPowGate(t)`` ``IsingXY(pi t)``; ``t = 1`` gives ``PauliX``, ``CNOT``, ...).
Under a control that phase matters and is kept (``qml.ctrl(qml.GlobalPhase)``). Other
gates become a ``QubitUnitary`` (numeric) or their Cirq decomposition (symbolic).

**Measurements.** Final ``cirq.measure`` operations become one ``qml.counts`` (or
``sample``/``probs``) over the measured qubits in order; PennyLane's
computational-basis measurements become one ``cirq.measure(..., key="m")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

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
from qstore_pl.circuits.symbol import Symbol, normalize_shape

#: Key of the measurement :func:`to_cirq` writes.
MEASUREMENT_KEY = "m"


def _cirq(feature: str):
    return import_extra("cirq", "cirq", feature), import_extra("sympy", "cirq", feature)


# ----------------------------------------------------------------------------- writing


def to_cirq(
    circuit: QuantumScript | ParametrizedCircuit | Iterable[Operator],
    wire_order: Sequence | None = None,
    decompose: bool = False,
):
    """A PennyLane tape, :class:`~qstore_pl.circuits.ParametrizedCircuit` or operator
    list as a ``cirq.Circuit`` on ``cirq.LineQubit`` s; Symbols become sympy symbols.

    Parameters
    ----------
    circuit : QuantumScript, ParametrizedCircuit or iterable of Operator
        Measurements may be ``qml.counts``/``sample``/``probs`` without an observable.
    wire_order : Sequence, optional
        Wire labels in ``LineQubit`` order (see the module docstring).
    decompose : bool
        Write operators Cirq has no gate for here (``U3``, ``Rot``, ...) as their
        decomposition.

    Raises
    ------
    ValueError
        Naming the operator (pass ``decompose=True``) or measurement Cirq cannot take.
    """
    cirq, sympy = _cirq("to_cirq")
    ops, measurements, _ = circuit_parts(circuit, "to_cirq")
    writer = _Writer(cirq, sympy)
    ops = lower(ops, writer.supported, "Cirq", decompose)
    all_wires = Wires.all_wires([op.wires for op in ops] + [m.wires for m in measurements])
    index = wire_index(all_wires, wire_order)
    measured = measured_wires(measurements, all_wires, "to_cirq", "Cirq")
    out = cirq.Circuit()
    for op in ops:
        qubits = [cirq.LineQubit(index[w]) for w in op.wires]
        if isinstance(op, qml.GlobalPhase):
            out.append(cirq.global_phase_operation(np.exp(-1j * writer.number(op.data[0], op))))
        elif not isinstance(op, qml.Barrier):
            out.append(writer.gate(op).on(*qubits))
    if measured:
        out.append(cirq.measure(*(cirq.LineQubit(index[w]) for w in measured), key=MEASUREMENT_KEY))
    return out


class _Writer:
    """PennyLane operators as Cirq gates."""

    def __init__(self, cirq, sympy):
        self.cirq, self.sympy = cirq, sympy
        pi = sympy.pi
        c = cirq
        self.fixed = {
            "Identity": c.I,
            "PauliX": c.X,
            "PauliY": c.Y,
            "PauliZ": c.Z,
            "Hadamard": c.H,
            "S": c.S,
            "Adjoint(S)": c.S**-1,
            "T": c.T,
            "Adjoint(T)": c.T**-1,
            "SX": c.XPowGate(exponent=0.5),
            "Adjoint(SX)": c.XPowGate(exponent=-0.5),
            "CNOT": c.CNOT,
            "CZ": c.CZ,
            "CY": c.ControlledGate(c.Y),
            "CH": c.ControlledGate(c.H),
            "SWAP": c.SWAP,
            "ISWAP": c.ISWAP,
            "Toffoli": c.CCX,
            "CCZ": c.CCZ,
            "CSWAP": c.CSWAP,
        }
        self.rotations = {
            "RX": c.rx,
            "RY": c.ry,
            "RZ": c.rz,
            "PhaseShift": lambda a: c.ZPowGate(exponent=a / pi),
            "U1": lambda a: c.ZPowGate(exponent=a / pi),
            "CRX": lambda a: c.ControlledGate(c.rx(a)),
            "CRY": lambda a: c.ControlledGate(c.ry(a)),
            "CRZ": lambda a: c.ControlledGate(c.rz(a)),
            "ControlledPhaseShift": lambda a: c.CZPowGate(exponent=a / pi),
            "IsingXX": lambda a: c.XXPowGate(exponent=a / pi, global_shift=-0.5),
            "IsingYY": lambda a: c.YYPowGate(exponent=a / pi, global_shift=-0.5),
            "IsingZZ": lambda a: c.ZZPowGate(exponent=a / pi, global_shift=-0.5),
            "IsingXY": lambda a: c.ISwapPowGate(exponent=a / pi),
        }

    def supported(self, op: Operator) -> bool:
        if op.name in self.fixed or op.name in self.rotations or op.name == "QubitUnitary":
            return True
        if isinstance(op, qml.Barrier):
            return True
        if isinstance(op, qml.GlobalPhase):
            return not isinstance(unwrap(op.data[0]), Symbol)
        return isinstance(op, Controlled) and not op.work_wires and self.supported(op.base)

    def number(self, p, op: Operator) -> float:
        return real_scalar(p, op, "Cirq")

    def value(self, p, op: Operator):
        p = unwrap(p)
        if isinstance(p, Symbol):
            return p.scale * self.sympy.Symbol(symbol_name(p))
        return self.number(p, op)

    def gate(self, op: Operator):
        if op.name in self.fixed:
            return self.fixed[op.name]
        if op.name in self.rotations:
            return self.rotations[op.name](self.value(op.data[0], op))
        if op.name == "QubitUnitary":
            return self.cirq.MatrixGate(np.asarray(qml.matrix(op)))
        if isinstance(op, qml.GlobalPhase):
            return self.cirq.GlobalPhaseGate(np.exp(-1j * self.number(op.data[0], op)))
        values = [int(v) for v in op.control_values]
        return self.gate(op.base).controlled(len(values), control_values=values)


# ----------------------------------------------------------------------------- reading


def from_cirq(
    circuit,
    measurement: str | None = "counts",
    symbols: Mapping[str, int | Sequence[int]] | None = None,
) -> QuantumScript | ParametrizedCircuit:
    """A ``cirq.Circuit`` as a PennyLane tape, or a
    :class:`~qstore_pl.circuits.ParametrizedCircuit` when it has sympy symbols.

    Parameters
    ----------
    circuit : cirq.Circuit
        Unitary gates (symbolic where they are powers of Paulis, controlled rotations,
        ``XX``/``YY``/``ZZ``/``ISWAP`` powers, or decompose into those) and final
        measurements.
    measurement : {"counts", "sample", "probs"} or None
        What the final measurements become (one measurement over the measured qubits in
        order); ``None`` ignores them.
    symbols : Mapping, optional
        Shapes of symbol arrays (``{"w": 5}``): sympy has no arrays, so by default each
        is as long as its largest index used.

    Raises
    ------
    ValueError
        Naming the operation with no PennyLane form here (mid-circuit measurement, a
        channel or reset, a non-linear symbolic parameter, a symbolic gate that does
        not decompose) and what to do instead.
    """
    cirq, _ = _cirq("from_cirq")
    if not isinstance(circuit, cirq.AbstractCircuit):
        raise TypeError(f"from_cirq expects a cirq.Circuit, got {type(circuit).__name__}")
    if measurement is not None and measurement not in MEASUREMENTS:
        raise ValueError(f"measurement must be one of {sorted(MEASUREMENTS)} or None")
    circuit = cirq.unroll_circuit_op(circuit, deep=True, tags_to_check=None)
    qubits = sorted(circuit.all_qubits())
    if all(isinstance(q, cirq.LineQubit) for q in qubits):
        wire_of = {q: q.x for q in qubits}
    else:
        wire_of = {q: i for i, q in enumerate(qubits)}
    reader = _Reader(cirq)
    ops: list[Operator] = []
    measured: list[int] = []
    for k, operation in enumerate(circuit.all_operations()):
        wires = [wire_of[q] for q in operation.qubits]
        where = f"operation {k} ({operation})"
        if set(wires) & set(measured):
            raise ValueError(
                f"{where} acts on a qubit measured before it: from_cirq reads only final "
                "measurements"
            )
        if isinstance(operation.gate, cirq.MeasurementGate):
            if any(operation.gate.full_invert_mask()):
                raise ValueError(f"{where}: measurements with an invert_mask are not read")
            measured += wires
            continue
        ops += reader.operators(operation, wires, where, exact=False)
    measurements = []
    if measured and measurement is not None:
        measurements.append(MEASUREMENTS[measurement](wires=measured))
    declared = {k: normalize_shape(k, v) for k, v in (symbols or {}).items()}
    return circuit_or_parametrized(ops, measurements, declared)


class _Reader:
    """Cirq operations as PennyLane operators."""

    def __init__(self, cirq):
        self.cirq = cirq
        c = cirq
        #: Cirq power gate -> (PennyLane rotation R, phase offset, gates at named (t, s))
        self.eigen = {
            c.Rx: (qml.RX, 0.5, {}),
            c.Ry: (qml.RY, 0.5, {}),
            c.Rz: (qml.RZ, 0.5, {}),
            c.XPowGate: (qml.RX, 0.5, {(1.0, 0.0): qml.PauliX, (0.5, 0.0): qml.SX}),
            c.YPowGate: (qml.RY, 0.5, {(1.0, 0.0): qml.PauliY}),
            c.ZPowGate: (
                qml.PhaseShift,
                0.0,
                {(1.0, 0.0): qml.PauliZ, (0.5, 0.0): qml.S, (0.25, 0.0): qml.T},
            ),
            c.CZPowGate: (qml.ControlledPhaseShift, 0.0, {(1.0, 0.0): qml.CZ}),
            c.XXPowGate: (qml.IsingXX, 0.5, {}),
            c.YYPowGate: (qml.IsingYY, 0.5, {}),
            c.ZZPowGate: (qml.IsingZZ, 0.5, {}),
            c.ISwapPowGate: (qml.IsingXY, 0.0, {(1.0, 0.0): qml.ISWAP}),
            c.HPowGate: (None, 0.0, {(1.0, 0.0): qml.Hadamard}),
            c.SwapPowGate: (None, 0.0, {(1.0, 0.0): qml.SWAP}),
            c.CXPowGate: (None, 0.0, {(1.0, 0.0): qml.CNOT}),
            c.CCXPowGate: (None, 0.0, {(1.0, 0.0): qml.Toffoli}),
            c.CCZPowGate: (None, 0.0, {(1.0, 0.0): qml.CCZ}),
        }

    def turns(self, t, where: str) -> Linear:
        """``pi * t`` (an exponent as an angle) as a linear form."""
        if self.cirq.is_parameterized(t):
            import sympy

            return linear_from_sympy(sympy.pi * t, where)
        return Linear.of(math.pi * float(t))

    def operators(self, operation, wires: list[int], where: str, exact: bool) -> list[Operator]:
        """``exact``: keep the global phase (the gate sits under a control)."""
        cirq, gate = self.cirq, operation.gate
        if gate is None:
            return self._decomposed(operation, wires, where, exact)
        if isinstance(gate, cirq.ControlledGate):
            return self._controlled(gate, wires, where)
        if isinstance(gate, cirq.CSwapGate):
            return [qml.CSWAP(wires=wires)]
        if isinstance(gate, cirq.IdentityGate):
            return [qml.Identity(wires=w) for w in wires]
        if isinstance(gate, cirq.GlobalPhaseGate):
            if cirq.is_parameterized(gate):
                return self._decomposed(operation, wires, where, exact)
            return [qml.GlobalPhase(-float(np.angle(complex(gate.coefficient))))]
        entry = next((self.eigen[c] for c in type(gate).__mro__ if c in self.eigen), None)
        if entry is not None:
            return self._eigen(gate, entry, wires, where, exact)
        if not cirq.is_parameterized(gate) and cirq.has_unitary(gate):
            return [qml.QubitUnitary(cirq.unitary(gate), wires=wires)]
        return self._decomposed(operation, wires, where, exact)

    def _eigen(self, gate, entry, wires, where, exact) -> list[Operator]:
        """``G**t`` with shift ``s`` equals ``e^{i pi t (s + offset)} R(pi t)``."""
        cls, offset, named = entry
        t, s = gate.exponent, gate.global_shift
        if not self.cirq.is_parameterized(t):
            key = (float(t), float(s))
            if key in named:
                return [named[key](wires=wires)]
            if (-key[0], key[1]) in named and named[(-key[0], key[1])] in (qml.S, qml.T, qml.SX):
                return [qml.adjoint(named[(-key[0], key[1])](wires=wires))]
        if cls is None:
            if self.cirq.is_parameterized(gate):
                return self._decomposed(gate.on(*self._qubits(wires)), wires, where, exact)
            return [qml.QubitUnitary(self.cirq.unitary(gate), wires=wires)]
        angle = self.turns(t, where)
        ops = build_operators(lambda p: cls(*p, wires=wires), cls.__name__, [angle], where)
        phase = angle * (s + offset)
        if exact and (phase.terms or phase.constant):  # qml.GlobalPhase(a) is e^{-i a}
            ops += build_operators(lambda p: qml.GlobalPhase(p[0]), "GlobalPhase", [-phase], where)
        return ops

    def _controlled(self, gate, wires, where) -> list[Operator]:
        values = [tuple(v) for v in gate.control_values]
        if any(len(v) != 1 for v in values) or any(d != 2 for d in gate.control_qid_shape):
            raise ValueError(f"{where}: only qubit controls with one control value are read")
        n = gate.num_controls()
        sub = gate.sub_gate.on(*self._qubits(wires[n:]))
        base = self.operators(sub, wires[n:], where, exact=True)
        controls, control_values = wires[:n], [bool(v[0]) for v in values]
        return [
            op
            for part in base
            for op in (
                _controlled_phase(part, controls, control_values)
                if isinstance(part, qml.GlobalPhase)
                else [qml.ctrl(part, control=controls, control_values=control_values)]
            )
        ]

    def _qubits(self, wires):
        return [self.cirq.LineQubit(w) for w in wires]

    def _decomposed(self, operation, wires, where, exact) -> list[Operator]:
        cirq = self.cirq
        parts = cirq.decompose_once(operation, default=None)
        if parts is None:
            if not cirq.is_parameterized(operation) and cirq.has_unitary(operation):
                return [qml.QubitUnitary(cirq.unitary(operation), wires=wires)]
            raise ValueError(
                f"{where}: {operation.gate or operation} has no PennyLane form here (not a "
                "unitary gate, or symbolic without a decomposition); resolve its parameters "
                "(cirq.resolve_parameters) or replace it"
            )
        wire_of = dict(zip(operation.qubits, wires))
        ops = []
        for part in cirq.flatten_to_ops(parts):
            missing = [q for q in part.qubits if q not in wire_of]
            if missing:
                raise ValueError(f"{where}: its decomposition uses ancilla qubits {missing}")
            ops += self.operators(part, [wire_of[q] for q in part.qubits], where, exact)
        return ops


def _controlled_phase(phase: qml.GlobalPhase, controls: list, values: list[bool]) -> list:
    """``e^{-i a}`` under controls, as a ``PhaseShift(-a)`` on the last control
    (controlled by the others): a gate every SDK has, symbolic or not."""
    *others, last = controls
    flip = [] if values[-1] else [qml.PauliX(last)]
    shift = qml.PhaseShift(-1 * phase.data[0], wires=last)
    if others:
        shift = qml.ctrl(shift, control=others, control_values=values[:-1])
    return [*flip, shift, *flip]
