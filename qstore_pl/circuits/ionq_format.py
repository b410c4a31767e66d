"""IonQ API circuits (v0.4 ``input``: ``{"gateset", "qubits", "circuit"}``) <-> PennyLane.

Two gatesets, as IonQ's API defines them:

* ``"qis"``: ``x y z h s si t ti v vi`` (``v`` is the square root of X), ``rx ry rz``
  and ``xx yy zz`` with a ``"rotation"`` in radians, ``swap`` and ``xx yy zz`` with
  ``"targets"``, ``cnot`` with a ``"control"`` (or ``"controls"``, a list: a Toffoli is
  a ``cnot`` with two) and a ``"target"``. Any single-target gate may carry
  ``"control"``/``"controls"`` when reading.
* ``"native"``: ``gpi`` and ``gpi2`` with a ``"phase"``, ``ms`` with ``"phases"`` (two)
  and an optional ``"angle"`` (0.25 is fully entangling), all in **turns** (1 turn =
  2 pi radians). :func:`to_ionq_json` compiles to them with
  :func:`qstore_pl.circuits.ionq_native.compile_native` (single-qubit fusion, virtual Z), so the
  native circuit equals the original up to a global phase and a final Z rotation per
  qubit: the same measurement probabilities, which is all IonQ returns.

**Wire order.** ``wire_order[i]`` (by default non-negative integer wires are their own
index) is IonQ qubit ``i``; reading, qubit ``i`` is wire ``i``. IonQ keys its result
probabilities with qubit 0 as the least significant bit; PennyLane's ``qml.probs`` puts
wire 0 first (most significant).

IonQ circuits have no symbolic parameters (bind a
:class:`~qstore_pl.circuits.ParametrizedCircuit` first) and no measurement list: every
qubit is measured at the end, so :func:`from_ionq_json` returns a tape measuring
``qml.probs`` of all qubits, and :func:`to_ionq_json` accepts computational-basis
measurements (``probs``/``counts``/``sample`` without an observable) and rejects others.
Native gates are read as standard PennyLane gates (``GPI(p) = RZ(2 pi p) RX(pi)
RZ(-2 pi p)``, ``MS`` an ``IsingXX`` between Z rotations), equal up to global phase, so
every PennyLane device runs them (``pennylane_ionq.ops.MS`` has a non-unitary matrix at
angle 0.25 and ``GPI``/``GPI2`` none).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pennylane as qml
from pennylane.operation import Operator
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits.lowering import (
    circuit_parts,
    lower,
    measured_wires,
    real_scalar,
    symbols_of,
    wire_index,
)
from qstore_pl.circuits.parametrized import ParametrizedCircuit

GATESETS = ("qis", "native")
_TAU = 2 * math.pi

#: IonQ qis gate -> PennyLane gate, for gates without parameters.
QIS_FIXED = {
    "x": qml.PauliX,
    "not": qml.PauliX,
    "y": qml.PauliY,
    "z": qml.PauliZ,
    "h": qml.Hadamard,
    "s": qml.S,
    "t": qml.T,
    "v": qml.SX,
    "swap": qml.SWAP,
}
#: IonQ qis gates that are the inverse of a fixed gate.
QIS_INVERSES = {"si": qml.S, "ti": qml.T, "vi": qml.SX}
#: IonQ qis gate -> PennyLane gate, for gates with a ``"rotation"`` (radians).
QIS_ROTATIONS = {
    "rx": qml.RX,
    "ry": qml.RY,
    "rz": qml.RZ,
    "xx": qml.IsingXX,
    "yy": qml.IsingYY,
    "zz": qml.IsingZZ,
}
#: PennyLane operator name -> IonQ qis gate written by :func:`to_ionq_json`.
PENNYLANE_TO_QIS = {
    "PauliX": "x",
    "PauliY": "y",
    "PauliZ": "z",
    "Hadamard": "h",
    "S": "s",
    "Adjoint(S)": "si",
    "T": "t",
    "Adjoint(T)": "ti",
    "SX": "v",
    "Adjoint(SX)": "vi",
    "RX": "rx",
    "RY": "ry",
    "RZ": "rz",
    "IsingXX": "xx",
    "IsingYY": "yy",
    "IsingZZ": "zz",
    "XX": "xx",  # pennylane_ionq.ops
    "YY": "yy",
    "ZZ": "zz",
    "SWAP": "swap",
    "CNOT": "cnot",
    "Toffoli": "cnot",
    "MultiControlledX": "cnot",
}
_TWO_TARGETS = {"swap", "xx", "yy", "zz"}


# ----------------------------------------------------------------------------- writing


def to_ionq_json(
    circuit: QuantumScript | Iterable[Operator],
    gateset: str = "qis",
    wire_order: Sequence | None = None,
    decompose: bool = False,
) -> dict[str, Any]:
    """The circuit as the ``input`` of an IonQ job: ``{"gateset", "qubits", "circuit"}``.

    Parameters
    ----------
    circuit : QuantumScript or iterable of Operator
        A circuit with numeric parameters.
    gateset : {"qis", "native"}
        IonQ's abstract gates (compiled by IonQ) or its native GPI/GPI2/MS gates
        (compiled here, phases in turns).
    wire_order : Sequence, optional
        Wire labels in IonQ qubit order (see the module docstring).
    decompose : bool
        ``"qis"`` only: write operators IonQ has no gate for (CZ, CRX, U3, ...) as their
        decomposition. The native compiler decomposes everything itself.

    Raises
    ------
    ValueError
        Naming the operator the gateset cannot express, a symbolic parameter (bind the
        circuit first), or a measurement IonQ cannot make.
    """
    if gateset not in GATESETS:
        raise ValueError(f"gateset must be one of {GATESETS}, got {gateset!r}")
    if isinstance(circuit, ParametrizedCircuit):
        raise TypeError(
            "IonQ circuits have no symbolic parameters: bind the ParametrizedCircuit first "
            "(to_ionq_json(pc.bind(**values)))"
        )
    ops, measurements, symbols = circuit_parts(circuit, "to_ionq_json")
    if symbols:
        op = next(op for op in ops if symbols_of([op]))
        raise ValueError(
            f"{op.name} has a symbolic parameter; IonQ circuits hold numbers: bind the "
            "circuit first"
        )
    all_wires = Wires.all_wires([op.wires for op in ops] + [m.wires for m in measurements])
    measured_wires(measurements, all_wires, "to_ionq_json", "IonQ")
    index = wire_index(all_wires, wire_order)
    if gateset == "qis":
        ops = lower(ops, _qis_supported, "IonQ's qis gateset", decompose)
        gates = [_qis_gate(op, index) for op in ops if not isinstance(op, qml.Barrier)]
    else:
        gates = _native_gates(ops, index)
    qubits = max(max(index.values(), default=-1) + 1, 1)
    return {"gateset": gateset, "qubits": qubits, "circuit": gates}


def _qis_supported(op: Operator) -> bool:
    if isinstance(op, qml.Barrier):
        return True
    if op.name == "MultiControlledX":
        return all(op.control_values) and not op.work_wires
    return op.name in PENNYLANE_TO_QIS


def _qis_gate(op: Operator, index: Mapping) -> dict:
    name = PENNYLANE_TO_QIS[op.name]
    qubits = [index[w] for w in op.wires]
    gate: dict[str, Any] = {"gate": name}
    if name in _TWO_TARGETS:
        gate["targets"] = qubits
    elif name == "cnot" and len(qubits) > 2:
        gate["controls"], gate["target"] = qubits[:-1], qubits[-1]
    elif name == "cnot":
        gate["control"], gate["target"] = qubits
    else:
        gate["target"] = qubits[0]
    if op.data:
        gate["rotation"] = real_scalar(op.data[0], op, "IonQ")
    return gate


def _native_gates(ops: list[Operator], index: Mapping) -> list[dict]:
    from qstore_pl.circuits.ionq_native import compile_native

    ops = [op for op in ops if not isinstance(op, qml.Barrier)]
    for op in ops:
        for p in op.data:
            real_scalar(p, op, "IonQ")
    if not all(op.name in ("GPI", "GPI2", "MS") for op in ops):
        ops = list(compile_native(ops).operations)
    gates = []
    for op in ops:
        qubits = [index[w] for w in op.wires]
        phases = [float(p) % 1.0 for p in op.data]
        if op.name == "MS":
            gate = {"gate": "ms", "targets": qubits, "phases": phases[:2]}
            gates.append(gate | {"angle": float(op.data[2])} if len(op.data) > 2 else gate)
        else:
            gates.append({"gate": op.name.lower(), "target": qubits[0], "phase": phases[0]})
    return gates


# ----------------------------------------------------------------------------- reading


def from_ionq_json(data: Mapping[str, Any] | str | bytes) -> QuantumScript:
    """An IonQ circuit as a PennyLane tape measuring ``qml.probs`` of every qubit.

    Parameters
    ----------
    data : dict or JSON text
        The job's ``input`` (``{"gateset", "qubits", "circuit"}``; ``gateset`` defaults
        to ``"qis"``) or a whole job holding it under ``"input"``.

    Raises
    ------
    ValueError
        With the gate's position, for an unknown gate, a missing or malformed field, or
        a qubit outside ``qubits``.
    """
    if isinstance(data, str | bytes | bytearray):
        data = json.loads(data)
    if isinstance(data, Mapping) and "input" in data and "circuit" not in data:
        data = data["input"]
    if not isinstance(data, Mapping):
        raise ValueError(f"an IonQ circuit is a JSON object, got {type(data).__name__}")
    if "circuits" in data:
        raise ValueError(
            "this is a multi-circuit job; read each entry of its 'circuits' list with "
            "from_ionq_json({'qubits': ..., 'gateset': ..., 'circuit': entry['circuit']})"
        )
    gateset = data.get("gateset", "qis")
    if gateset not in GATESETS:
        raise ValueError(f"unknown IonQ gateset {gateset!r}; IonQ's are {GATESETS}")
    qubits = data.get("qubits")
    if not isinstance(qubits, int) or isinstance(qubits, bool) or qubits < 1:
        raise ValueError(f"'qubits' must be a positive integer, got {qubits!r}")
    circuit = data.get("circuit")
    if not isinstance(circuit, list):
        raise ValueError("'circuit' must be a list of gates")
    ops: list[Operator] = []
    with qml.QueuingManager.stop_recording():
        for k, gate in enumerate(circuit):
            ops += gate_operators(gate, gateset, qubits, f"circuit[{k}]")
    return QuantumScript(ops, [qml.probs(wires=range(qubits))])


def gate_operators(
    gate: Mapping[str, Any], gateset: str, qubits: int, where: str
) -> list[Operator]:
    """The PennyLane operators of one IonQ gate (several for native gates)."""
    if not isinstance(gate, Mapping) or not isinstance(gate.get("gate"), str):
        raise ValueError(f"{where}: a gate is an object with a 'gate' name, got {gate!r}")
    name = gate["gate"]
    where = f"{where} ({name})"
    known = _NATIVE if gateset == "native" else _QIS
    if name not in known:
        raise ValueError(
            f"{where}: unsupported gate {name!r}, not a gate of IonQ's {gateset} gateset "
            f"(supported here: {', '.join(sorted(known))})"
        )
    if gateset == "native":
        return _native_operators(gate, name, qubits, where)
    if name in _TWO_TARGETS:
        wires = _qubit_list(gate, "targets", qubits, where, 2)
        controls = []
    else:
        wires = [_qubit(gate.get("target"), qubits, f"{where}: 'target'")]
        controls = _controls(gate, qubits, where)
    if name in QIS_ROTATIONS:
        angle = _number(gate, "rotation", where)
        op = QIS_ROTATIONS[name](angle, wires=wires)
    elif name in QIS_INVERSES:
        op = qml.adjoint(QIS_INVERSES[name](wires=wires))
    elif name == "cnot":
        if not controls:
            raise ValueError(f"{where}: cnot needs a 'control' or 'controls'")
        op = qml.PauliX(wires)
    else:
        op = QIS_FIXED[name](wires=wires)
    if len(set(controls + wires)) != len(controls + wires):
        raise ValueError(f"{where}: a qubit is both control and target")
    return [qml.ctrl(op, control=controls) if controls else op]


_QIS = set(QIS_FIXED) | set(QIS_INVERSES) | set(QIS_ROTATIONS) | {"cnot"}
_NATIVE = {"gpi", "gpi2", "ms"}


def _native_operators(gate, name: str, qubits: int, where: str) -> list[Operator]:
    if name == "ms":
        a, b = _qubit_list(gate, "targets", qubits, where, 2)
        phases = gate.get("phases")
        if not isinstance(phases, list) or len(phases) != 2:
            raise ValueError(f"{where}: 'phases' must be a list of two phases (turns)")
        p0, p1 = (_number({"phase": p}, "phase", where) * _TAU for p in phases)
        angle = _number(gate, "angle", where) if "angle" in gate else 0.25
        return [
            qml.RZ(-p0, a),
            qml.RZ(-p1, b),
            qml.IsingXX(_TAU * angle, wires=[a, b]),
            qml.RZ(p0, a),
            qml.RZ(p1, b),
        ]
    wire = _qubit(gate.get("target"), qubits, f"{where}: 'target'")
    phase = _number(gate, "phase", where) * _TAU
    rotation = math.pi if name == "gpi" else math.pi / 2
    return [qml.RZ(-phase, wire), qml.RX(rotation, wire), qml.RZ(phase, wire)]


def _number(gate: Mapping, key: str, where: str) -> float:
    value = gate.get(key)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # a JSON integer beyond float's range
            number = math.inf
        if math.isfinite(number):
            return number
    raise ValueError(f"{where}: {key!r} must be a finite number, got {value!r}")


def _qubit(value, qubits: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < qubits:
        raise ValueError(f"{where} must be a qubit index below {qubits}, got {value!r}")
    return value


def _qubit_list(gate: Mapping, key: str, qubits: int, where: str, size: int) -> list[int]:
    value = gate.get(key)
    if not isinstance(value, list) or len(value) != size:
        raise ValueError(f"{where}: {key!r} must list {size} qubits, got {value!r}")
    wires = [_qubit(v, qubits, f"{where}: {key!r}") for v in value]
    if len(set(wires)) != size:
        raise ValueError(f"{where}: {key!r} repeats a qubit: {wires}")
    return wires


def _controls(gate: Mapping, qubits: int, where: str) -> list[int]:
    if "control" in gate and "controls" in gate:
        raise ValueError(f"{where}: give 'control' or 'controls', not both")
    if "control" in gate:
        return [_qubit(gate["control"], qubits, f"{where}: 'control'")]
    if "controls" in gate:
        value = gate["controls"]
        if not isinstance(value, list) or not value:
            raise ValueError(f"{where}: 'controls' must be a non-empty list of qubits")
        return _qubit_list(gate, "controls", qubits, where, len(value))
    return []
