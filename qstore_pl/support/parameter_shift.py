"""PennyLane's parameter-shift rule over a batch whose every sample has its own angles.

When each sample's gate angles are its own (a column of a parameter table), shifting
one angle in every column shifts each sample's own angle: one shifted copy of the
batch gives every sample's shifted circuit, and samples do not mix. So the rule runs
on whole batches, a few shifted copies stacked per run, where PennyLane's transform
refuses broadcast parameters. Both the batched engine's value programs
(:meth:`~qstore_pl.devices.batched.binding.ValueProgram.shift_vjp`) and the tape path
of an angle table (:class:`~qstore_pl.interfaces.broadcast_program.BroadcastProgram`)
build their shifted copies and contract them here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import pennylane as qml
from pennylane.operation import Operator

#: Amplitudes of the shifted circuits run at once (complex128: 16 bytes each).
MAX_SHIFTED_AMPLITUDES = 1 << 25

#: What names a derivative: a gate's position, a table row.
Key = TypeVar("Key", bound=Hashable)


def shift_rule(op: Operator) -> np.ndarray:
    """``op``'s parameter-shift recipe, rows ``[coefficient, shift]``: the derivative is
    ``sum(coefficient * f(angle + shift))``.

    Raises
    ------
    ValueError
        If PennyLane knows no shift rule for ``op`` (no generator or frequencies).
    """
    try:
        frequencies = op.parameter_frequencies[0]
    except Exception as err:  # PennyLane's errors for gates without a generator vary
        raise ValueError(
            f"{op.name} has no parameter-shift rule ({type(err).__name__}); with shots its "
            "derivative needs one"
        ) from err
    return np.asarray(qml.gradients.generate_shift_rule(frequencies), dtype=np.float64)


def shift_terms(
    rules: Iterable[tuple[Key, int, np.ndarray]],
) -> tuple[list[tuple[int, float]], list[tuple[Key, float]]]:
    """The shifted copies that ``rules`` ask for, and how each one counts.

    Parameters
    ----------
    rules : Iterable[tuple[Hashable, int, np.ndarray]]
        ``(key, slot, rule)``: the derivative ``key`` names is that of parameter
        ``slot``, by ``rule`` (:func:`shift_rule`).

    Returns
    -------
    shifts : list[tuple[int, float]]
        ``(slot, shift)`` per shifted copy.
    terms : list[tuple[Hashable, float]]
        ``(key, coefficient)`` per shifted copy, in the same order.
    """
    shifts: list[tuple[int, float]] = []
    terms: list[tuple[Key, float]] = []
    for key, slot, rule in rules:
        for coefficient, shift in rule:
            shifts.append((slot, float(shift)))
            terms.append((key, float(coefficient)))
    return shifts, terms


def shift_chunks(count: int, batch: int, num_wires: int) -> Iterator[slice]:
    """``count`` shifted copies of a ``batch`` on ``num_wires`` wires, split into runs of
    at most :data:`MAX_SHIFTED_AMPLITUDES` amplitudes (at least one copy each)."""
    per_run = max(1, MAX_SHIFTED_AMPLITUDES // (batch << num_wires))
    for first in range(0, count, per_run):
        yield slice(first, min(first + per_run, count))


def shifted_copies(angles: np.ndarray, shifts: Sequence[tuple[int, float]]) -> np.ndarray:
    """``(K, B)`` angles tiled once per entry of ``shifts``, ``(K, B * len(shifts))``:
    copy ``i`` has row ``shifts[i][0]`` moved by ``shifts[i][1]``."""
    batch = angles.shape[1]
    tiled = np.tile(np.asarray(angles, dtype=np.float64), (1, len(shifts)))
    for i, (slot, shift) in enumerate(shifts):
        tiled[slot, i * batch : (i + 1) * batch] += shift
    return tiled


def contract_shifts(
    terms: Sequence[tuple[Key, float]],
    outputs: Sequence[np.ndarray],
    cotangents: np.ndarray,
) -> dict[Key, np.ndarray]:
    """Each derivative's vector-Jacobian products from the shifted copies' outputs.

    Parameters
    ----------
    terms : Sequence[tuple[Hashable, float]]
        ``(key, coefficient)`` per shifted copy (:func:`shift_terms`).
    outputs : Sequence[np.ndarray]
        Each shifted copy's ``(B, O)`` outputs, in the order of ``terms``.
    cotangents : np.ndarray
        ``(T, B, O)``: ``T`` stacked cotangents.

    Returns
    -------
    dict
        ``key -> (T, B)``: each cotangent's product with every sample's derivative.
    """
    grads: dict[Key, np.ndarray] = {}
    for (key, coefficient), values in zip(terms, outputs, strict=True):
        term = coefficient * np.einsum("tbo,bo->tb", cotangents, values)
        grads[key] = grads[key] + term if key in grads else term
    return grads


__all__ = [
    "MAX_SHIFTED_AMPLITUDES",
    "contract_shifts",
    "shift_chunks",
    "shift_rule",
    "shift_terms",
    "shifted_copies",
]
