"""Group the circuits of a batch by structure.

Circuits with the same gates on the same wires, the same measurements and the same
shots differ only in parameters: they are routed once and may run as one sweep.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from pennylane.operation import Operator
from pennylane.tape import QuantumScript


def structure_key(tape: QuantumScript) -> Hashable:
    """A key equal for tapes that differ only in gate parameters.

    Computed once per tape: the QNode, the router and the backend all ask for it, and
    a tape's operations do not change after it is built (new parameters make a new
    tape).
    """
    key = tape.__dict__.get("_qstore_structure_key")
    if key is None:
        ops = tuple(_op_key(op) for op in tape.operations)
        key = ops, tuple(mp.hash for mp in tape.measurements), tape.shots, len(tape.wires)
        tape.__dict__["_qstore_structure_key"] = key
    return key


#: Gates whose hyperparameters follow from their name and wires (PennyLane stores
#: the control wires and base gate of CNOT & co. as hyperparameters).
_WIRES_ONLY = frozenset(
    {"CNOT", "CZ", "CY", "CH", "Toffoli", "CCZ", "CSWAP", "CRX", "CRY", "CRZ", "CRot"}
    | {"ControlledPhaseShift"}
)


def _op_key(op: Operator) -> Hashable:
    if op.name in _WIRES_ONLY:
        # their ``wires`` property concatenates control and target wires on every
        # call (~5 us); the same labels, read from what the gate stores
        wires = op.hyperparameters["control_wires"].labels + op._wires.labels
        return op.name, wires, len(op.data)
    # hyperparameters (control values, Pauli words, ...) change the circuit
    hyper = op.hyperparameters
    if hyper:
        hyper = tuple(sorted((k, _hyper_key(v)) for k, v in hyper.items()))
        return op.name, op.wires.labels, len(op.data), hyper
    return op.name, op.wires.labels, len(op.data)


def _hyper_key(value) -> Hashable:
    # controlled and adjoint gates keep their base gate, parameters included, as a
    # hyperparameter: key it by structure, or CRX(0.1) and CRX(0.2) never group
    if isinstance(value, Operator):
        return _op_key(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Operator) for v in value):
        return tuple(_hyper_key(v) for v in value)
    return repr(value)


@dataclass
class TapeGroup:
    """Tapes of one structure and their positions in the original batch."""

    indices: list[int]
    tapes: list[QuantumScript]
    key: Hashable = None


def group_by_structure(tapes: Sequence[QuantumScript]) -> list[TapeGroup]:
    """Split a batch into structure groups, in order of first appearance."""
    groups: dict[Hashable, TapeGroup] = {}
    for i, tape in enumerate(tapes):
        key = structure_key(tape)
        group = groups.setdefault(key, TapeGroup([], [], key))
        group.indices.append(i)
        group.tapes.append(tape)
    return list(groups.values())
