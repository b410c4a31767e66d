"""Compile circuits to IonQ's native gates GPI, GPI2 and MS, with fewer gates.

Z rotations are free on trapped ions: they are tracked as a per-qubit phase frame
and absorbed into the phases of later GPI, GPI2 and MS gates (IonQ's "virtual Z").
Every run of single-qubit gates between two-qubit gates is fused into one 2x2
unitary and emitted as at most two GPI2 gates (one GPI or GPI2, or none, in the
special cases), which merges rotations and cancels inverses in one step; adjacent
self-inverse two-qubit gates cancel before that. Each CNOT becomes one fully
entangling MS gate.

The compiled circuit equals the original up to a global phase and a final Z
rotation per qubit (:attr:`NativeCircuit.frame`), which does not change
computational-basis measurements.

Conventions (phases in turns, as IonQ's API takes them)::

    GPI(p)  = RZ(2 pi p) RX(pi)   RZ(-2 pi p)
    GPI2(p) = RZ(2 pi p) RX(pi/2) RZ(-2 pi p)
    MS(p0, p1) = (RZ(2 pi p0) x RZ(2 pi p1)) IsingXX(pi/2) (RZ(-2 pi p0) x RZ(-2 pi p1))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pennylane as qml
from pennylane.operation import Operator
from pennylane_ionq.ops import GPI, GPI2, MS

_TAU = 2 * np.pi
_ATOL = 1e-10
#: Gates the compiler emits.
NATIVE_GATES = frozenset({"GPI", "GPI2", "MS"})


def gpi_matrix(phase: float) -> np.ndarray:
    """Matrix of GPI(phase), phase in turns."""
    return np.array([[0, np.exp(-1j * _TAU * phase)], [np.exp(1j * _TAU * phase), 0]])


def gpi2_matrix(phase: float) -> np.ndarray:
    """Matrix of GPI2(phase), phase in turns."""
    return np.array(
        [[1, -1j * np.exp(-1j * _TAU * phase)], [-1j * np.exp(1j * _TAU * phase), 1]]
    ) / np.sqrt(2)


def ms_matrix(phase0: float, phase1: float, angle: float = 0.25) -> np.ndarray:
    """Matrix of MS(phase0, phase1, angle), phases and angle in turns.

    ``pennylane_ionq.ops.MS.compute_matrix`` is not unitary for the default
    ``angle=0.25`` (it scales ``cos(angle/2)`` by ``1/sqrt(2)``), so the emulator and
    the tests use this one: ``angle=0.25`` is the fully entangling gate.
    """
    c, s = np.cos(np.pi * angle), np.sin(np.pi * angle)
    plus, minus = _TAU * (phase0 + phase1), _TAU * (phase0 - phase1)
    return np.array(
        [
            [c, 0, 0, -1j * s * np.exp(-1j * plus)],
            [0, c, -1j * s * np.exp(-1j * minus), 0],
            [0, -1j * s * np.exp(1j * minus), c, 0],
            [-1j * s * np.exp(1j * plus), 0, 0, c],
        ]
    )


@dataclass(frozen=True)
class GateCounts:
    """Single- and two-qubit gate counts of one circuit (wider gates count as 2q)."""

    one_qubit: int
    two_qubit: int

    @classmethod
    def of(cls, operations: Iterable[Operator]) -> GateCounts:
        """Counts of a sequence of gates."""
        sizes = [len(op.wires) for op in operations]
        return cls(sum(1 for s in sizes if s == 1), sum(1 for s in sizes if s >= 2))


@dataclass(frozen=True)
class NativeCircuit:
    """A circuit in IonQ's native gates.

    Attributes
    ----------
    operations : tuple[Operator, ...]
        GPI, GPI2 and MS gates, in order.
    frame : dict
        Final Z rotation (radians) per wire: original = ``prod RZ(frame[w])`` x compiled,
        up to global phase.
    """

    operations: tuple[Operator, ...]
    frame: dict

    @property
    def counts(self) -> GateCounts:
        """Native gate counts."""
        return GateCounts.of(self.operations)


def zxz_angles(matrix: np.ndarray) -> tuple[float, float, float]:
    """``(phi, theta, lam)`` with ``matrix = e^{i g} RZ(phi) RX(theta) RZ(lam)``."""
    matrix = np.asarray(matrix, dtype=complex)
    su2 = matrix / np.sqrt(np.linalg.det(matrix))
    a, b = su2[0, 0], su2[1, 0]
    theta = 2 * np.arctan2(abs(b), abs(a))
    total = -2 * np.angle(a) if abs(a) > _ATOL else 0.0  # phi + lam
    diff = 2 * np.angle(b) + np.pi if abs(b) > _ATOL else 0.0  # phi - lam
    return (total + diff) / 2, theta, (total - diff) / 2


class _Compiler:
    """Walks a gate sequence, fusing 1q gates and tracking the Z frame per wire."""

    def __init__(self):
        self.ops: list[Operator] = []
        self.frame: dict = {}
        self.pending: dict = {}  # wire -> fused 2x2 unitary not yet emitted

    def add(self, op: Operator) -> None:
        if len(op.wires) == 1:
            w = op.wires[0]
            self.pending[w] = qml.matrix(op) @ self.pending.get(w, np.eye(2))
        elif op.name == "CNOT":
            self._cnot(*op.wires)
        elif op.name == "MS":
            self._ms(op)
        elif op.has_decomposition:
            for part in op.decomposition():
                self.add(part)
        elif len(op.wires) == 2 and op.has_matrix:
            for part in qml.ops.two_qubit_decomposition(qml.matrix(op), op.wires):
                self.add(part)
        else:
            raise ValueError(
                f"cannot compile {op.name} on wires {op.wires.tolist()} to IonQ native gates: "
                "it has neither a decomposition nor a matrix of at most two qubits"
            )

    def _cnot(self, control, target) -> None:
        # CNOT = RY_c(-pi/2) (RX_c(-pi/2) RX_t(-pi/2)) XX(pi/2) RY_c(pi/2), checked in tests
        self.pending[control] = qml.RY.compute_matrix(np.pi / 2) @ self.pending.get(
            control, np.eye(2)
        )
        self._emit_ms(0.0, 0.0, control, target)
        rx = qml.RX.compute_matrix(-np.pi / 2)
        self.pending[control] = qml.RY.compute_matrix(-np.pi / 2) @ rx
        self.pending[target] = rx

    def _ms(self, op: Operator) -> None:
        phase0, phase1, angle = (float(x) for x in op.parameters)
        if abs(angle - 0.25) > _ATOL:
            raise ValueError(f"only the fully entangling MS (angle 0.25) compiles, got {angle}")
        self._emit_ms(phase0, phase1, *op.wires)

    def _emit_ms(self, phase0, phase1, w0, w1) -> None:
        self.flush(w0)
        self.flush(w1)
        self.ops.append(MS(self._shift(phase0, w0), self._shift(phase1, w1), 0.25, wires=[w0, w1]))

    def _shift(self, phase: float, wire) -> float:
        """A lab-frame phase as the phase to emit under the current frame of ``wire``."""
        return float((phase - self.frame.get(wire, 0.0) / _TAU) % 1.0)

    def _rz(self, wire, angle: float) -> None:
        self.frame[wire] = self.frame.get(wire, 0.0) + angle

    def _emit_1q(self, gate: type, phase: float, wire) -> None:
        self.ops.append(gate(self._shift(phase, wire), wires=wire))

    def flush(self, wire) -> None:
        """Emit the fused 1q unitary pending on ``wire``."""
        matrix = self.pending.pop(wire, None)
        if matrix is None:
            return
        phi, theta, lam = zxz_angles(matrix)
        self._rz(wire, lam)
        if abs(theta) < 1e-9:
            pass
        elif abs(theta - np.pi) < 1e-9:
            self._emit_1q(GPI, 0.0, wire)
        elif abs(theta - np.pi / 2) < 1e-9:
            self._emit_1q(GPI2, 0.0, wire)
        else:  # RX(t) = RZ(pi/2) RX(pi/2) RZ(t) RX(-pi/2) RZ(-pi/2)
            self._rz(wire, -np.pi / 2)
            self._emit_1q(GPI2, 0.5, wire)
            self._rz(wire, theta)
            self._emit_1q(GPI2, 0.0, wire)
            self._rz(wire, np.pi / 2)
        self._rz(wire, phi)


def compile_native(operations: Sequence[Operator]) -> NativeCircuit:
    """Compile gates to GPI, GPI2 and MS with single-qubit fusion and virtual Z.

    Parameters
    ----------
    operations : Sequence[Operator]
        Gates with concrete (non-abstract, non-broadcast) parameters.

    Returns
    -------
    NativeCircuit

    Raises
    ------
    ValueError
        If a gate can be neither decomposed nor given as a matrix on two qubits.
    """
    tape = qml.tape.QuantumScript(list(operations))
    [tape], _ = qml.transforms.cancel_inverses(tape)
    compiler = _Compiler()
    for op in tape.operations:
        compiler.add(op)
    for wire in list(compiler.pending):
        compiler.flush(wire)
    frame = {w: float(np.mod(a, 2 * _TAU)) for w, a in compiler.frame.items()}
    return NativeCircuit(tuple(compiler.ops), frame)


def native_matrix(circuit: NativeCircuit, wire_order: Sequence) -> np.ndarray:
    """Unitary of a compiled circuit with its final frame applied (for checks)."""
    n = len(wire_order)
    index = {w: i for i, w in enumerate(wire_order)}
    total = np.eye(2**n, dtype=complex)
    for op in circuit.operations:
        if op.name == "MS":
            local = ms_matrix(*(float(p) for p in op.parameters))
        elif op.name == "GPI":
            local = gpi_matrix(float(op.parameters[0]))
        else:
            local = gpi2_matrix(float(op.parameters[0]))
        total = _embed(local, [index[w] for w in op.wires], n) @ total
    for wire, angle in circuit.frame.items():
        total = _embed(qml.RZ.compute_matrix(angle), [index[wire]], n) @ total
    return total


def _embed(local: np.ndarray, positions: Sequence[int], n: int) -> np.ndarray:
    """``local`` acting on qubits ``positions`` of ``n`` (qubit 0 most significant)."""
    k = len(positions)
    rest = [i for i in range(n) if i not in positions]
    perm = list(positions) + rest
    full = np.kron(local, np.eye(2 ** (n - k))).reshape([2] * (2 * n))
    inverse = np.argsort(perm)
    axes = list(inverse) + [n + i for i in inverse]
    return full.transpose(axes).reshape(2**n, 2**n)
