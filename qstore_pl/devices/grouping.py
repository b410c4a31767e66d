"""Group the circuits of a batch by structure.

Circuits with the same gates on the same wires, the same measurements and the same
shots differ only in parameters: they are routed once and may run as one sweep.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
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
        # the gates' and measurements' wires fix the tape's wires: no need for
        # ``tape.wires``, which costs a union over every gate on a fresh tape
        ops = tuple(_op_key(op) for op in tape.operations)
        key = ops, tuple(mp.hash for mp in tape.measurements), tape.shots
        tape.__dict__["_qstore_structure_key"] = key
    return key


def broadcast_size(tape: QuantumScript) -> int | None:
    """``tape.batch_size``: how many circuits a parameter-broadcast tape holds."""
    return broadcast_layout(tape)[0]


def broadcast_layout(tape: QuantumScript) -> tuple[int | None, tuple[tuple[bool, ...], ...]]:
    """The tape's broadcast size, and per operation which parameters carry the batch axis.

    PennyLane finds the size through ``qml.math`` dispatch on every parameter of every
    gate (about 0.3 ms for a 50-gate tape), and each device call gets fresh tapes.
    Gates that declare their parameters' dimensions as a class attribute (the
    standard ones) are read directly here, once per tape (the router and the batched
    engine both ask); anything unusual is asked as PennyLane asks, and PennyLane
    raises its errors for mismatched broadcast sizes.
    """
    cached = tape.__dict__.get("_qstore_broadcast")
    if cached is not None:
        return cached
    size, flags = None, []
    for op in tape.operations:
        op_size, op_flags = _op_broadcast(op)
        if op_size is not None:
            if size is not None and op_size != size:
                tape.batch_size  # noqa: B018  (raises PennyLane's error)
            size = op_size
        flags.append(op_flags)
    cached = tape.__dict__["_qstore_broadcast"] = (size, tuple(flags))
    return cached


@cache
def _declared_ndims(cls: type) -> tuple[int, ...] | None:
    """``ndim_params`` when the class declares it as a tuple, not computes it."""
    for klass in cls.__mro__:
        if "ndim_params" in klass.__dict__:
            declared = klass.__dict__["ndim_params"]
            return declared if isinstance(declared, tuple) else None
    return None


def _op_broadcast(op: Operator) -> tuple[int | None, tuple[bool, ...]]:
    """The operation's broadcast size and which of its parameters carry the batch axis."""
    data = op.data
    if not data:
        return None, ()
    expected = _declared_ndims(op.__class__)
    if expected is not None and len(expected) == len(data):
        size, flags = None, []
        for param, declared in zip(data, expected):
            actual = ndim(param)
            if actual == declared:
                flags.append(False)
                continue
            first = np.shape(param)[0] if actual == declared + 1 else None
            if first is None or (size is not None and first != size):
                break  # PennyLane's own check below names the problem
            size = int(first)
            flags.append(True)
        else:
            return size, tuple(flags)
    return op.batch_size, tuple(_carries_batch(op, k) for k in range(len(data)))


def ndim(value) -> int:
    """``np.ndim`` without its array conversion for arrays and Python numbers."""
    if isinstance(value, np.ndarray):
        return value.ndim
    if isinstance(value, (float, int, complex)):
        return 0
    return np.ndim(value)


def _carries_batch(op: Operator, k: int) -> bool:
    if op.batch_size is None:
        return False
    try:
        return np.ndim(op.data[k]) > op.ndim_params[k]
    except AttributeError:  # operators that do not track per-parameter dimensions
        return True


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
