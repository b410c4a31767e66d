"""Finite shots on a parameter table: sampled estimates, parameter-shift derivatives.

With shots, a value program's outputs are what a device with that many shots gives:
each row's measurements estimated from ``shots`` samples of its final state, with
commuting Pauli words sharing their samples as on default.qubit
(:func:`sample_measurements`). Derivatives are those of PennyLane's parameter-shift
rule, which a QNode with shots runs: every trainable gate angle is shifted by its
gate's rule and each shifted circuit is sampled with the same shots. The shifted
circuits are rows of parameter tables (:func:`shifted_tables`), as many per run on
the engine as :data:`~qstore_pl.support.parameter_shift.MAX_SHIFTED_AMPLITUDES` allows: no tape per
shift (the rule itself: :mod:`qstore_pl.support.parameter_shift`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pennylane.measurements import ProbabilityMP

from qstore_pl.devices.batched.measure import _gates, _rotate, marginal, z_signs
from qstore_pl.devices.batched.program import BoundProgram, Program, TapeParameters
from qstore_pl.support.parameter_shift import shift_chunks, shifted_copies


def sample_measurements(
    kernel, program: Program, states: np.ndarray, shots: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each measurement of ``program`` estimated from ``shots`` samples of every row of
    ``states`` (``(B, 2**n)``): ``(B,)`` per expectation, ``(B, 2**k)`` per ``probs``.

    Measurements whose Pauli words agree wire by wire share one basis change and one
    set of samples, as on a device; a word that needs another basis gets its own
    samples; an observable without a Pauli form (``Hermitian``) is sampled in the
    basis of its own diagonalizing gates. A row's samples are drawn as the counts of
    its ``2**n`` outcomes (one multinomial draw, distributed exactly as ``shots``
    single samples), which costs the same for any number of shots.
    """
    n = program.num_wires
    rows = states.shape[0]
    found: list[Any] = [None] * len(program.measurements)
    groups: list[tuple[dict[int, str], list[tuple[int, float | None, tuple[int, ...]]]]] = []
    for m, mp in enumerate(program.measurements):
        if isinstance(mp, ProbabilityMP):
            wires = tuple(int(w) for w in mp.wires) or tuple(range(n))
            _join(groups, dict.fromkeys(wires, "Z"), (m, None, wires))
            continue
        rep = mp.obs.pauli_rep
        if rep is None:  # its own basis: its diagonalizing gates, then its eigenvalues
            rotated = kernel.apply_all(states.copy(), _gates(mp.obs.diagonalizing_gates()), n)
            wires = tuple(int(w) for w in mp.obs.wires)
            frequencies = _frequencies(rotated, shots, rng)
            found[m] = marginal(frequencies, wires, n) @ np.real(mp.obs.eigvals())
            continue
        found[m] = np.zeros(rows)
        for word, coefficient in rep.items():
            if not word:  # the identity: no sample needed
                found[m] = found[m] + float(np.real(coefficient))
                continue
            basis = {int(w): p for w, p in word.items()}
            _join(groups, basis, (m, float(np.real(coefficient)), tuple(sorted(basis))))
    for basis, members in groups:
        turn = {w: p for w, p in basis.items() if p != "Z"}
        rotated = _rotate(kernel, states, turn, n) if turn else states
        frequencies = _frequencies(rotated, shots, rng)
        for m, coefficient, wires in members:
            if coefficient is None:
                found[m] = marginal(frequencies, wires, n)
            else:
                found[m] = found[m] + coefficient * (frequencies @ z_signs(n, wires))
    return [np.asarray(value, dtype=np.float64) for value in found]


def _join(groups, basis: dict[int, str], member) -> None:
    """Put ``member`` into the first group whose basis agrees with ``basis`` on every
    shared wire (widening it), or into a new group."""
    for group_basis, members in groups:
        if all(group_basis.get(w, p) == p for w, p in basis.items()):
            group_basis.update(basis)
            members.append(member)
            return
    groups.append((dict(basis), [member]))


def _frequencies(states: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's outcome counts over ``shots`` samples, divided by ``shots``."""
    probs = np.abs(states.astype(np.complex128)) ** 2
    probs /= probs.sum(axis=1, keepdims=True)  # complex64 rows drift from 1
    return rng.multinomial(shots, probs) / shots


def shifted_tables(
    bound: BoundProgram, shifts: Sequence[tuple[int, float]]
) -> Iterator[tuple[BoundProgram, int]]:
    """``bound``'s batch with one angle moved per entry of ``shifts`` (``(slot, shift)``
    adds ``shift`` to table slot ``slot``), as parameter tables of at most
    :data:`~qstore_pl.support.parameter_shift.MAX_SHIFTED_AMPLITUDES` amplitudes: each
    table and the number of shifted copies of the batch it stacks, in the order of
    ``shifts``."""
    program, table = bound.program, bound.parameters[0]
    batch = bound.batch
    # every slot as a column of the batch; a shared constant stays one value in a table
    # unless a shift moves it
    shared = [not flags[0] for flags in table.broadcast]
    columns = np.array(
        [np.broadcast_to(np.real(data[0]), (batch,)) for data in table.data], dtype=np.float64
    ).reshape(-1, batch)
    for run in shift_chunks(len(shifts), batch, program.num_wires):
        part = shifts[run]
        copies = len(part)
        tiled = shifted_copies(columns, part)
        moved = {slot for slot, _ in part}
        data, broadcast = [], []
        for slot, (values, flags) in enumerate(zip(table.data, table.broadcast)):
            if shared[slot] and slot not in moved:
                data.append(values)
                broadcast.append(flags)
            else:
                data.append((tiled[slot],))
                broadcast.append((True,))
        parameters = TapeParameters(batch * copies, data, broadcast)
        yield BoundProgram.from_table(program, parameters), copies
