"""Circuit tensors: batches of different circuits as one numeric array.

Frameworks without string tensors (Keras on JAX or torch) can still carry circuits as
data: each circuit becomes a block of rows ``[op code, wire_0, wire_1, wire_2,
param_0, ..., param_{max_params-1}]``, padded with all-zero rows to a common length.

* The op code of a gate is its position in :data:`OP_VOCABULARY` plus one; 0 marks a
  padding row. The vocabulary only ever grows at the end, and
  :data:`OP_VOCABULARY_VERSION` changes whenever it does.
* Wires are integer indices (``-1`` in unused slots); circuits with other labels are
  encoded with ``wires=`` mapping labels to positions.
* Parameters fill the first slots of a row, zeros the rest. With the default float64
  dtype they come back bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pennylane as qml
from pennylane.operation import Operator
from pennylane.tape import QuantumScript

#: Version of :data:`OP_VOCABULARY`; bumped whenever a gate is added.
OP_VOCABULARY_VERSION = 1

#: Gates a circuit tensor can hold, by PennyLane name; op code = position + 1.
OP_VOCABULARY: tuple[str, ...] = (
    "Identity",
    "Hadamard",
    "PauliX",
    "PauliY",
    "PauliZ",
    "S",
    "Adjoint(S)",
    "T",
    "Adjoint(T)",
    "SX",
    "Adjoint(SX)",
    "RX",
    "RY",
    "RZ",
    "PhaseShift",
    "U1",
    "U2",
    "U3",
    "Rot",
    "CNOT",
    "CY",
    "CZ",
    "CH",
    "SWAP",
    "ISWAP",
    "ECR",
    "CRX",
    "CRY",
    "CRZ",
    "CRot",
    "ControlledPhaseShift",
    "IsingXX",
    "IsingYY",
    "IsingZZ",
    "IsingXY",
    "Toffoli",
    "CSWAP",
)
#: Op code of padding rows.
PAD_CODE = 0
#: Gate name → op code.
OP_CODES: dict[str, int] = {name: i + 1 for i, name in enumerate(OP_VOCABULARY)}
#: Wire slots per row (the widest vocabulary gate acts on three wires).
MAX_WIRES = 3


def _builder(name: str) -> tuple[Callable[..., Operator], int, int]:
    """Constructor, number of wires and number of parameters of a vocabulary gate."""
    if name.startswith("Adjoint("):
        base = getattr(qml, name[len("Adjoint(") : -1])
        return (lambda *p, wires: qml.adjoint(base(*p, wires=wires))), base.num_wires, 0
    cls = getattr(qml, name)
    return cls, (1 if name == "Identity" else cls.num_wires), cls.num_params


_SPECS = {name: _builder(name) for name in OP_VOCABULARY}


def row_width(max_params: int = 3) -> int:
    """Number of columns ``k`` of a circuit tensor: code, wire slots, parameter slots."""
    return 1 + MAX_WIRES + max_params


def _operations(circuit) -> list[Operator]:
    if isinstance(circuit, QuantumScript):
        if circuit.batch_size is not None:
            raise ValueError(
                f"a circuit tensor holds single circuits; this tape is broadcast over "
                f"{circuit.batch_size} parameter sets (split it with "
                "qml.transforms.broadcast_expand)"
            )
        return list(circuit.operations)
    ops = list(circuit)
    for op in ops:
        if not isinstance(op, Operator):
            raise TypeError(f"a circuit must be a tape or a sequence of operators, got {op!r}")
    return ops


def _wire_map(wires: Sequence | None) -> dict | None:
    if wires is None:
        return None
    order = list(wires)
    if len(set(order)) != len(order):
        raise ValueError(f"wires must not repeat a label: {order}")
    return {w: i for i, w in enumerate(order)}


def _wire_index(label, mapping: dict | None, op: Operator) -> int:
    if mapping is not None:
        if label not in mapping:
            raise ValueError(f"{op.name} acts on wire {label!r}, which is not in wires=")
        return mapping[label]
    if isinstance(label, int | np.integer) and not isinstance(label, bool) and label >= 0:
        return int(label)
    raise ValueError(
        f"{op.name} acts on wire {label!r}; circuit tensors store non-negative integer "
        "wires; pass wires=[...] to number other labels"
    )


def _param(value, op: Operator) -> float:
    array = np.asarray(qml.math.to_numpy(qml.math.unwrap(value)))
    if array.ndim != 0 or np.iscomplexobj(array):
        raise ValueError(f"{op.name} has a non-scalar or complex parameter {value!r}")
    return float(array)


def encode_circuits(
    circuits: Iterable,
    max_ops: int | None = None,
    max_params: int = 3,
    dtype: npt.DTypeLike = np.float64,
    wires: Sequence | None = None,
) -> np.ndarray:
    """Encode circuits (operations only) as a numeric array.

    Parameters
    ----------
    circuits : iterable of QuantumScript or of operator sequences
        The circuits; measurements are not encoded.
    max_ops : int, optional
        Rows per circuit; defaults to the longest circuit. Shorter circuits are padded
        with zero rows.
    max_params : int
        Parameter slots per row (3 fits every gate of the vocabulary).
    dtype : numpy dtype
        Float dtype of the result; float64 keeps parameters exact.
    wires : Sequence, optional
        Wire labels in index order, for circuits whose wires are not non-negative ints.

    Returns
    -------
    np.ndarray
        Shape ``(batch, max_ops, 1 + MAX_WIRES + max_params)``.

    Raises
    ------
    ValueError
        For a gate outside :data:`OP_VOCABULARY`, too many operations or parameters, or
        wires that are not indices.
    """
    if max_params < 0:
        raise ValueError(f"max_params must be >= 0, got {max_params}")
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a float dtype, got {np.dtype(dtype)}")
    mapping = _wire_map(wires)
    circuits = [_operations(c) for c in circuits]
    longest = max((len(ops) for ops in circuits), default=0)
    if max_ops is None:
        max_ops = longest
    elif longest > max_ops:
        raise ValueError(f"a circuit has {longest} operations, more than max_ops={max_ops}")
    out = np.zeros((len(circuits), max_ops, row_width(max_params)), dtype=dtype)
    for b, ops in enumerate(circuits):
        for r, op in enumerate(ops):
            code = OP_CODES.get(op.name)
            if code is None:
                raise ValueError(
                    f"{op.name} is not in the circuit-tensor vocabulary (version "
                    f"{OP_VOCABULARY_VERSION}): {', '.join(OP_VOCABULARY)}; decompose it "
                    "into these gates or use the JSON format"
                )
            if len(op.data) > max_params:
                raise ValueError(
                    f"{op.name} has {len(op.data)} parameters, more than max_params={max_params}"
                )
            n_wires = _SPECS[op.name][1]
            if len(op.wires) != n_wires:
                raise ValueError(
                    f"{op.name} acts on {len(op.wires)} wires; circuit tensors hold it on "
                    f"{n_wires} wire(s) only"
                )
            row = out[b, r]
            row[0] = code
            row[1 : 1 + MAX_WIRES] = -1
            for j, label in enumerate(op.wires):
                row[1 + j] = _wire_index(label, mapping, op)
            for j, value in enumerate(op.data):
                row[1 + MAX_WIRES + j] = _param(value, op)
    return out


def decode_circuits(array: Any, wires: Sequence | None = None) -> list[QuantumScript]:
    """Rebuild the circuits (operations only) of :func:`encode_circuits`.

    Parameters
    ----------
    array : array_like
        Shape ``(batch, max_ops, k)``, or ``(max_ops, k)`` for one circuit; numpy,
        torch, JAX and TensorFlow arrays are converted to numpy.
    wires : Sequence, optional
        Labels for wire indices ``0, 1, ...``; default: the indices themselves.

    Raises
    ------
    ValueError
        For unknown op codes, non-integer or missing wires, or a malformed shape.
    """
    array = np.asarray(qml.math.to_numpy(array))
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[-1] < 1 + MAX_WIRES:
        raise ValueError(
            f"a circuit tensor has shape (batch, max_ops, k >= {1 + MAX_WIRES}), got {array.shape}"
        )
    labels = None if wires is None else list(wires)
    max_params = array.shape[-1] - 1 - MAX_WIRES
    circuits = []
    with qml.QueuingManager.stop_recording():
        for b, block in enumerate(array):
            ops = [
                _decode_row(row, labels, max_params, f"circuit {b}, row {r}")
                for r, row in enumerate(block)
                if row[0] != PAD_CODE
            ]
            circuits.append(QuantumScript(ops))
    return circuits


def _decode_row(row: np.ndarray, labels, max_params: int, where: str) -> Operator:
    code = row[0]
    if not (code == int(code) and 1 <= code <= len(OP_VOCABULARY)):
        raise ValueError(
            f"{where}: op code {code:g} is not in the vocabulary (1..{len(OP_VOCABULARY)}, "
            f"version {OP_VOCABULARY_VERSION})"
        )
    name = OP_VOCABULARY[int(code) - 1]
    build, n_wires, n_params = _SPECS[name]
    if n_params > max_params:
        raise ValueError(
            f"{where}: {name} needs {n_params} parameter slots, rows have {max_params}"
        )
    indices = row[1 : 1 + n_wires]
    if not all(w == int(w) and w >= 0 for w in indices):
        raise ValueError(f"{where}: {name} has invalid wire indices {indices.tolist()}")
    wires = [int(w) for w in indices]
    if labels is not None:
        if max(wires) >= len(labels):
            raise ValueError(f"{where}: wire index {max(wires)} has no label in wires=")
        wires = [labels[i] for i in wires]
    params = [float(p) for p in row[1 + MAX_WIRES : 1 + MAX_WIRES + n_params]]
    try:
        return build(*params, wires=wires)
    except Exception as err:
        raise ValueError(f"{where}: cannot build {name} on wires {wires}: {err}") from err
