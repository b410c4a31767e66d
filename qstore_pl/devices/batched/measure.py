"""Measurements on batches of states, and the adjoint states that derivatives start from.

Expectation values of Pauli words come from probabilities after a change of basis
(H for X, H·S† for Y) on the word's wires; other observables are applied as matrices.
The adjoint state of a cotangent ``dy`` is ``λ = Σ_m dy_m O_m ψ``; every diagonal part
(Z words, probabilities) is gathered into one diagonal first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pennylane as qml
from pennylane.measurements import (
    ExpectationMP,
    MeasurementProcess,
    ProbabilityMP,
    StateMeasurement,
    StateMP,
    VarianceMP,
)
from pennylane.pauli import PauliSentence, PauliWord

from qstore_pl.devices.batched import jit_kernels
from qstore_pl.devices.batched.program import ArrayGate

_H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
# Maps Y to Z: _YZ @ Y @ _YZ^† = Z
_YZ = _H @ np.diag([1, -1j])
_BASIS = {"X": _H, "Y": _YZ}
_PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}

#: Measurement kinds the batched engine computes natively; any other
#: ``StateMeasurement`` goes through its own ``process_state``, row by row.
SUPPORTED = (ExpectationMP, VarianceMP, ProbabilityMP, StateMP)


def supports_measurement(mp: MeasurementProcess) -> bool:
    """Whether the batched engine computes ``mp`` (analytically)."""
    if isinstance(mp, (ExpectationMP, VarianceMP)):
        if mp.obs is None:  # of a mid-circuit measurement value (deferred to a wire)
            return mp.mv is not None
        return mp.obs.pauli_rep is not None or mp.obs.has_matrix
    if isinstance(mp, ProbabilityMP):
        return mp.obs is None or mp.obs.has_diagonalizing_gates
    return isinstance(mp, StateMeasurement) and mp.obs is None


@functools.cache
def bit_table(n: int, wires: tuple[int, ...]) -> np.ndarray:
    """For each basis index of ``n`` qubits, the index of its bits on ``wires``."""
    index = np.arange(2**n)
    local = np.zeros_like(index)
    for w in wires:
        local = (local << 1) | ((index >> (n - 1 - w)) & 1)
    return local


@functools.cache
def z_signs(n: int, wires: tuple[int, ...]) -> np.ndarray:
    """``±1`` per basis index: the eigenvalue of Z⊗...⊗Z on ``wires``."""
    parity = np.zeros(2**n, dtype=np.int64)
    index = np.arange(2**n)
    for w in wires:
        parity ^= (index >> (n - 1 - w)) & 1
    return 1.0 - 2.0 * parity


@functools.cache
def z_sign_matrix(n: int) -> np.ndarray:
    """``(2**n, n)``: column ``i`` holds the eigenvalue of ``Z_i`` per basis index."""
    if n == 0:
        return np.zeros((1, 0))
    return np.stack([z_signs(n, (i,)) for i in range(n)], axis=1)


def z_expectations(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``Σ_k values[:, k]`` and ``Σ_k values[:, k] z_i(k)`` for every wire ``i``.

    Two reductions over the state (high half and low half of the bits) and two small
    products, instead of one pass per wire or a ``2**n x n`` sign matrix.
    """
    rows = values.shape[0]
    blocks = values.reshape(rows, 2 ** (n // 2), 2 ** (n - n // 2))
    return _z_from_halves(blocks.sum(axis=2), blocks.sum(axis=1), n)


def _z_from_halves(
    by_high: np.ndarray, by_low: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`z_expectations` from the values summed over the low half of the index
    bits (``by_high``, ``(rows, 2**(n // 2))``) and over the high half (``by_low``)."""
    high = n // 2
    low = n - high
    per_wire = np.concatenate([by_high @ z_sign_matrix(high), by_low @ z_sign_matrix(low)], 1)
    return by_high.sum(axis=1), per_wire


def marginal(values: np.ndarray, wires: Sequence[int], n: int) -> np.ndarray:
    """Sum ``(M, 2**n)`` values over every wire but ``wires``: ``(M, 2**k)`` in their order."""
    rows = values.shape[0]
    wires = list(wires)
    others = tuple(1 + i for i in range(n) if i not in wires)
    reduced = values.reshape((rows,) + (2,) * n).sum(axis=others) if others else values
    reduced = reduced.reshape((rows,) + (2,) * len(wires))
    order = np.argsort(np.argsort(wires))  # axis order of wires after the reduction
    reduced = np.transpose(reduced, [0, *(1 + order)]) if len(wires) > 1 else reduced
    return reduced.reshape(rows, 2 ** len(wires))


def _rotate(kernel, states, basis: dict[int, str], n: int):
    return kernel.apply_all(
        states.copy(), [ArrayGate("dense", (w,), _BASIS[p]) for w, p in basis.items()], n
    )


def pauli_expvals(kernel, states: np.ndarray, sentence: PauliSentence, n: int) -> np.ndarray:
    """``<ψ|Σ c P|ψ>`` for every row, one basis change per distinct X/Y pattern."""
    total = np.zeros(states.shape[0])
    by_basis: dict[tuple, list[tuple[PauliWord, complex]]] = {}
    for word, coeff in sentence.items():
        basis = tuple(sorted((int(w), p) for w, p in word.items() if p != "Z"))
        by_basis.setdefault(basis, []).append((word, coeff))
    for basis, terms in by_basis.items():
        rotated = _rotate(kernel, states, dict(basis), n) if basis else states
        probs = np.abs(rotated) ** 2
        norm, single = z_expectations(probs, n) if len(terms) > 2 else (None, None)
        for word, coeff in terms:
            wires = tuple(sorted(int(w) for w in word))
            if not wires:
                value = probs.sum(axis=1) if norm is None else norm
            elif len(wires) == 1 and single is not None:
                value = single[:, wires[0]]
            else:
                value = probs @ z_signs(n, wires)
            total += np.real(coeff) * value
    return total


def _matrix_of(obs, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
    wires = tuple(int(w) for w in obs.wires)
    return np.asarray(qml.matrix(obs, wire_order=wires), complex), wires


def apply_observable(kernel, states: np.ndarray, obs, n: int) -> np.ndarray:
    """``O ψ`` for every row."""
    if obs.pauli_rep is not None:
        out = np.zeros_like(states)
        for word, coeff in obs.pauli_rep.items():
            paulis = [ArrayGate("dense", (int(w),), _PAULI[p]) for w, p in word.items()]
            out += coeff * kernel.apply_all(states.copy(), paulis, n)
        return out
    matrix, wires = _matrix_of(obs, n)
    return kernel.apply(states.copy(), ArrayGate("dense", wires, matrix), n)


def expval(kernel, states: np.ndarray, obs, n: int) -> np.ndarray:
    """``<ψ|O|ψ>`` for every row."""
    if obs.pauli_rep is not None:
        return pauli_expvals(kernel, states, obs.pauli_rep, n)
    applied = apply_observable(kernel, states, obs, n)
    return np.real(np.einsum("mk,mk->m", np.conj(states), applied))


def _z_word_wires(mp: MeasurementProcess) -> tuple[int, ...] | None:
    """The wires of an expectation value of one Z word (coefficient 1), else ``None``."""
    if not isinstance(mp, ExpectationMP) or mp.obs is None:
        return None
    rep = mp.obs.pauli_rep
    if rep is None or len(rep) != 1:
        return None
    ((word, coeff),) = rep.items()
    if coeff != 1 or any(p != "Z" for p in word.values()):
        return None
    return tuple(sorted(int(w) for w in word))


def measure_all(kernel, states: np.ndarray, measurements, n: int) -> list[np.ndarray]:
    """Every measurement for every row, as :func:`measure` gives them one by one.

    Expectation values of Z words (``<Z_i>`` on every qubit, as most models read
    out) share one pass over the probabilities instead of one pass each: at 20
    qubits and a batch of 32, 20 readouts cost 1.8 s one by one.
    """
    words = [_z_word_wires(mp) for mp in measurements]
    if sum(w is not None for w in words) < 2:
        return [measure(kernel, states, mp, n) for mp in measurements]
    if any(w is not None and len(w) > 1 for w in words):
        probs = np.abs(states) ** 2
        norm, single = z_expectations(probs, n)
    else:  # one compiled pass over the states, no probabilities array (256 MB at 20
        # qubits and batch 32 in complex64, with numpy's temporary)
        by_high, by_low = jit_kernels.probability_halves(states, n - n // 2)
        norm, single = _z_from_halves(by_high, by_low, n)
    values = []
    for mp, wires in zip(measurements, words):
        if wires is None:
            values.append(measure(kernel, states, mp, n))
        elif not wires:
            values.append(norm)
        elif len(wires) == 1:
            values.append(single[:, wires[0]])
        else:
            values.append(probs @ z_signs(n, wires))
    return values


def measure(kernel, states: np.ndarray, mp: MeasurementProcess, n: int) -> np.ndarray:
    """One measurement for every row: ``(M,)`` or ``(M, ...)``."""
    if isinstance(mp, (ExpectationMP, VarianceMP)) and mp.obs is None:
        return _row_by_row(states, mp, n)  # a mid-circuit measurement value: PennyLane's rule
    if isinstance(mp, ExpectationMP):
        return expval(kernel, states, mp.obs, n)
    if isinstance(mp, VarianceMP):
        obs = mp.obs
        mean = expval(kernel, states, obs, n)
        if obs.pauli_rep is not None:
            square = pauli_expvals(kernel, states, obs.pauli_rep @ obs.pauli_rep, n)
        else:
            applied = apply_observable(kernel, states, obs, n)
            square = np.real(np.einsum("mk,mk->m", np.conj(applied), applied))
        return square - mean**2
    if isinstance(mp, ProbabilityMP):
        wires = [int(w) for w in mp.wires] or list(range(n))
        if mp.obs is not None:  # probabilities in the observable's eigenbasis
            states = kernel.apply_all(states.copy(), _gates(mp.obs.diagonalizing_gates()), n)
        return marginal(np.abs(states) ** 2, wires, n)
    if isinstance(mp, StateMP):
        wires = [int(w) for w in mp.wires]
        if wires and wires != list(range(n)):  # the state in the measurement's wire order
            states = states.reshape((-1,) + (2,) * n).transpose([0, *(1 + w for w in wires)])
        return np.asarray(states, dtype=complex).reshape(-1, 2**n)
    return _row_by_row(states, mp, n)


def _row_by_row(states: np.ndarray, mp: MeasurementProcess, n: int) -> np.ndarray:
    """``mp`` by its own ``process_state``, one row at a time."""
    wire_order = qml.wires.Wires(range(n))
    return np.stack([np.asarray(mp.process_state(row, wire_order)) for row in states])


def _gates(ops) -> list[ArrayGate]:
    return [
        ArrayGate("dense", tuple(int(w) for w in op.wires), np.asarray(op.matrix(), complex))
        for op in ops
    ]


def output_sizes(measurements: Sequence[MeasurementProcess], n: int) -> list[int]:
    """Number of real outputs of each measurement (expval 1, probs 2**k)."""
    sizes = []
    for mp in measurements:
        if isinstance(mp, ProbabilityMP):
            sizes.append(2 ** (len(mp.wires) or n))
        elif isinstance(mp, ExpectationMP):
            sizes.append(1)
        else:
            raise NotImplementedError(
                f"derivatives of {type(mp).__name__} are not computed by the batched engine"
            )
    return sizes


def adjoint_states(
    kernel,
    states: np.ndarray,
    measurements,
    cotangents: Sequence[np.ndarray],
    n: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``λ = Σ_m dy_m O_m ψ`` per row; ``cotangents[m]`` is ``(M,)`` or ``(M, 2**k)``.

    Written into ``out`` when given (rows like ``states``'; it may be ``states``)."""
    rows = states.shape[0]
    diagonal = None  # other diagonal parts (probabilities, Z words), when there are any
    total = None
    singles = np.zeros((rows, n))  # cotangents of <Z_i>, added in one separable pass
    has_singles = False
    for mp, dy in zip(measurements, cotangents):
        dy = np.asarray(dy, dtype=float).reshape(rows, -1)
        wires = _z_word_wires(mp)
        if wires is not None and len(wires) == 1:
            singles[:, wires[0]] += dy[:, 0]
            has_singles = True
            continue
        if isinstance(mp, ProbabilityMP):
            wires = tuple(int(w) for w in mp.wires) or tuple(range(n))
            diagonal = _add(diagonal, dy[:, bit_table(n, wires)])
            continue
        obs = mp.obs
        rep = obs.pauli_rep
        if rep is not None and all(set(word.values()) <= {"Z"} for word in rep):
            for word, coeff in rep.items():
                wires = tuple(sorted(int(w) for w in word))
                diagonal = _add(diagonal, (np.real(coeff) * dy) * z_signs(n, wires)[None, :])
            continue
        term = dy * apply_observable(kernel, states, obs, n)
        total = term if total is None else total + term
    if diagonal is not None:
        if has_singles:
            diagonal += _z_weighted_signs(singles, n)
        diag_term = states * diagonal.astype(states.dtype)
        total = diag_term if total is None else total + diag_term
    elif has_singles:  # only <Z_i>: one compiled pass scales ψ by a sum of two halves
        by_high, by_low = _z_weight_halves(singles, n)
        real = np.finfo(states.dtype).dtype
        # straight into ``out`` when nothing else adds to it (elementwise: may be ``states``)
        into = out if total is None and out is not None else np.empty_like(states)
        jit_kernels.scale_by_halves(states, by_high.astype(real), by_low.astype(real), into)
        if into is out:
            return out
        total = into if total is None else total + into
    if total is None:
        total = np.zeros_like(states)
    if out is None:
        return total
    out[...] = total
    return out


def z_cotangent_halves(
    measurements, cotangents: Sequence[np.ndarray], n: int, rows: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``λ = Σ_m dy_m Z_{w_m} ψ`` as two halves to add and scale ψ by
    (:func:`_z_weight_halves`, :func:`~qstore_pl.devices.batched.jit_kernels.scale_by_halves`)
    when every measurement is ``<Z>`` on one wire (most models' readout), else ``None``."""
    singles = np.zeros((rows, n))
    for mp, dy in zip(measurements, cotangents):
        wires = _z_word_wires(mp)
        if wires is None or len(wires) != 1:
            return None
        singles[:, wires[0]] += np.asarray(dy, dtype=float).reshape(rows, -1)[:, 0]
    return _z_weight_halves(singles, n)


def _add(total: np.ndarray | None, term: np.ndarray) -> np.ndarray:
    return term.copy() if total is None else total + term


def _z_weight_halves(weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_z_weighted_signs` as its two halves: ``(rows, 2**high)`` over the high
    bits and ``(rows, 2**low)`` over the low ones, to be added."""
    high = n // 2
    low = n - high
    return weights[:, :high] @ z_sign_matrix(high).T, weights[:, high:] @ z_sign_matrix(low).T


def _z_weighted_signs(weights: np.ndarray, n: int) -> np.ndarray:
    """``Σ_i weights[:, i] z_i(k)`` for every basis index ``k``: ``(rows, 2**n)``.

    The sum splits into a part over the high half of the bits and one over the low
    half, so two small products and one broadcast addition replace ``n`` passes over
    the state (and a ``2**n x n`` sign matrix).
    """
    by_high, by_low = _z_weight_halves(weights, n)
    total = by_high[:, :, None] + by_low[:, None, :]
    return total.reshape(weights.shape[0], 2**n)
