"""Lowering a circuit to the gates a target format can write, and the pieces every
exporter shares (wire numbering, numeric parameters, final measurements).

Every exporter (OpenQASM, Qiskit, Cirq, IonQ JSON) writes the operators it knows one to
one and, when asked (``decompose=True``), replaces the others by their PennyLane
decomposition, recursively. Without ``decompose`` an unknown operator raises a
``ValueError`` that names it and says how to proceed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pennylane as qml
from pennylane.measurements import CountsMP, MeasurementProcess, ProbabilityMP, SampleMP
from pennylane.operation import Operator
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits.parametrized import ParametrizedCircuit
from qstore_pl.circuits.symbol import Symbol, holds_symbol, infer_shapes

_COMPUTATIONAL_BASIS = (CountsMP, SampleMP, ProbabilityMP)
#: How final measurements are read: the PennyLane measurement over the measured wires.
MEASUREMENTS = {"counts": qml.counts, "sample": qml.sample, "probs": qml.probs}

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
    if any(isinstance(p, Symbol) or holds_symbol(p) for p in parameters_of(op)):
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
    value = unwrap(value)
    if isinstance(value, Symbol) or holds_symbol(value):
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
    if array.dtype == object:
        raise ValueError(f"{op.name} has the parameter {value!r}; {target} needs numbers")
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


def wire_index(wires: Wires, wire_order: Sequence | None) -> dict:
    """Wire label -> qubit index: ``wire_order``'s positions, else non-negative integer
    wires are their own index and other labels are numbered in ``wires`` order."""
    if wire_order is not None:
        order = list(wire_order)
        missing = [w for w in wires if w not in order]
        if missing or len(set(order)) != len(order):
            raise ValueError(f"wire_order must list each circuit wire once; missing {missing}")
        return {w: i for i, w in enumerate(order)}
    labels = list(wires)
    if all(isinstance(w, int | np.integer) and not isinstance(w, bool) and w >= 0 for w in labels):
        return {w: int(w) for w in labels}
    return {w: i for i, w in enumerate(labels)}


def parameters_of(op: Operator):
    """Every parameter of ``op``, looking inside operators held as data (a Symbol that
    a decomposition wrapped in a 0-d object array comes out as the Symbol)."""
    for p in op.data:
        if isinstance(p, Operator):
            yield from parameters_of(p)
        else:
            yield unwrap(p)


def symbols_of(ops: Iterable[Operator]) -> list[Symbol]:
    """The Symbols among the operators' parameters, inside symbol arrays too."""
    found: list[Symbol] = []
    for op in ops:
        for p in parameters_of(op):
            if isinstance(p, Symbol):
                found.append(p)
            elif holds_symbol(p):
                found += [v for v in p.flat if isinstance(v, Symbol)]
    return found


def unwrap(value):
    """The element of a 0-d object array (templates decompose symbol arrays into those),
    else ``value``."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        return value.item()
    return value


def circuit_parts(
    circuit: QuantumScript | ParametrizedCircuit | Iterable[Operator], caller: str
) -> tuple[list[Operator], list[MeasurementProcess], dict[str, tuple[int, ...]]]:
    """Operators, measurements and symbol shapes of a tape, a ParametrizedCircuit or an
    operator list (whose symbol shapes are inferred)."""
    if isinstance(circuit, ParametrizedCircuit):
        return circuit.operations, circuit.measurements, circuit.symbols
    if isinstance(circuit, QuantumScript):
        ops, measurements = list(circuit.operations), list(circuit.measurements)
    else:
        ops, measurements = list(circuit), []
        for op in ops:
            if not isinstance(op, Operator):
                raise TypeError(
                    f"{caller} expects a tape, a ParametrizedCircuit or operators, got {op!r}"
                )
    found = symbols_of(ops)
    return ops, measurements, infer_shapes(found)


def measured_wires(
    measurements: Sequence[MeasurementProcess], all_wires: Wires, caller: str, sdk: str
) -> list:
    """The wires measured in the computational basis, in order of first appearance (all
    wires for a measurement without wires); any other measurement raises, naming it."""
    measured: list = []
    for mp in measurements:
        if not isinstance(mp, _COMPUTATIONAL_BASIS) or mp.obs is not None or mp.mv is not None:
            raise ValueError(
                f"{caller}: {mp} has no {sdk} circuit form ({sdk} circuits measure qubits in "
                "the computational basis); measure with qml.counts, qml.sample or qml.probs "
                "on wires, or drop the measurement and compute the observable from them"
            )
        for w in mp.wires or all_wires:
            if w not in measured:
                measured.append(w)
    return measured


def circuit_or_parametrized(
    ops: list[Operator],
    measurements: list[MeasurementProcess],
    declared: dict[str, tuple[int, ...]] | None = None,
) -> QuantumScript | ParametrizedCircuit:
    """A ParametrizedCircuit when an operator holds a Symbol (symbol shapes: the
    ``declared`` ones of the symbols used, grown to hold every index), else a tape."""
    found = symbols_of(ops)
    if not found:
        return QuantumScript(ops, measurements)
    used = {s.name for s in found}
    shapes = infer_shapes(found, {k: v for k, v in (declared or {}).items() if k in used})
    return ParametrizedCircuit(ops, measurements, shapes)
