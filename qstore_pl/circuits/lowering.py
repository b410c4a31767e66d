"""Lowering a circuit to the gates a target format can write.

Every exporter (OpenQASM, Qiskit, Cirq, IonQ JSON) writes the operators it knows one to
one and, when asked (``decompose=True``), replaces the others by their PennyLane
decomposition, recursively. Without ``decompose`` an unknown operator raises a
``ValueError`` that names it and says how to proceed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pennylane as qml
from pennylane.operation import Operator

from qstore_pl.circuits.symbol import Symbol

_MAX_DEPTH = 16


def lower(
    ops: Iterable[Operator],
    supported: Callable[[Operator], bool],
    target: str,
    decompose: bool,
    alternative: str = "",
) -> list[Operator]:
    """``ops`` with every operator ``supported`` rejects replaced by its decomposition.

    Parameters
    ----------
    ops : Iterable[Operator]
        The circuit's operators (parameters may be Symbols).
    supported : Callable[[Operator], bool]
        Whether the target writes an operator as it is.
    target : str
        The target's name, for error messages (``"OpenQASM 2.0 (qelib1)"``).
    decompose : bool
        Decompose unsupported operators instead of raising.
    alternative : str
        Another way out, added to error messages (``"use tape_to_json ..."``).

    Raises
    ------
    ValueError
        Naming the operator the target cannot express (and has no decomposition into
        supported gates, or whose decomposition computes with a symbolic parameter).
    """
    return [
        piece for op in ops for piece in _expanded(op, supported, target, decompose, alternative)
    ]


def _expanded(op, supported, target, decompose, alternative, depth=0) -> list[Operator]:
    if supported(op):
        return [op]
    hint = f"{alternative}, or " if alternative else ""
    if not decompose:
        raise ValueError(
            f"{target} cannot express {op.name} on wires {op.wires.tolist()}; {hint}pass "
            "decompose=True to write its decomposition"
        )
    if depth > _MAX_DEPTH:
        raise ValueError(f"{op.name} does not decompose into {target} gates; {alternative}")
    try:
        with qml.QueuingManager.stop_recording():
            parts = op.decomposition()
    except qml.exceptions.DecompositionUndefinedError:
        raise ValueError(
            f"{target} cannot express {op.name}, which has no decomposition"
            + (f"; {alternative}" if alternative else "")
        ) from None
    if any(isinstance(p, Symbol) for p in op.data):
        for part in parts:
            if any(_is_nan(p) for p in part.data):
                raise ValueError(
                    f"{target} cannot express {op.name}, and its decomposition computes with "
                    "its symbolic parameter (only scaling keeps a Symbol); bind values first"
                )
    return [
        piece
        for part in parts
        for piece in _expanded(part, supported, target, decompose, alternative, depth + 1)
    ]


def _is_nan(value) -> bool:
    if isinstance(value, Symbol):
        return False
    try:
        return bool(np.isnan(np.asarray(qml.math.to_numpy(value), dtype=complex)).any())
    except (TypeError, ValueError):
        return False


def real_scalar(value, op: Operator, target: str) -> float:
    """A numeric operator parameter as a float, or a ``ValueError`` naming the operator
    when it is traced, batched, complex or not finite."""
    if qml.math.is_abstract(value):
        raise ValueError(
            f"{op.name} has a traced parameter (inside jax.jit); {target} needs values"
        )
    array = np.asarray(qml.math.to_numpy(value))
    if array.ndim != 0:
        raise ValueError(
            f"{op.name} has a parameter of shape {array.shape}; {target} holds one circuit, "
            "not a broadcast batch (split the tape with qml.transforms.broadcast_expand)"
        )
    if np.iscomplexobj(array) or not np.isfinite(array):
        raise ValueError(
            f"{op.name} has the parameter {array.item()!r}; {target} angles are finite reals"
        )
    return float(array)
