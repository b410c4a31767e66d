"""How states become vectors, and what the similarity between two of them means.

Two kinds of state are stored:

``"pure"``
    A pure state ψ of n qubits (2**n complex amplitudes). Its global phase is fixed
    first: ψ is multiplied by e^{-iθ} so that its largest-magnitude amplitude (the
    first one on ties within 1e-9) is real and positive. The stored vector is the
    real vector [Re ψ, Im ψ] of length 2·2**n, so a dot product of two stored
    vectors is Re⟨ψ|φ⟩ of the phase-fixed states: not a fidelity ranking, so the
    search queries several phase rotations until the top-k by fidelity is proven
    (:mod:`qstore_pl.db.search`). The similarity returned to users is the
    fidelity |⟨ψ|φ⟩|², recomputed exactly from the stored amplitudes.
``"probs"``
    A probability vector p over the 2**n basis states (measured on hardware or
    from shots). The stored vector is √p (unit norm), so a dot product is the
    Bhattacharyya coefficient Σ√(p_i q_i) and the similarity returned is the
    classical fidelity (Σ√(p_i q_i))², which equals the quantum fidelity of the
    states √p and √q and is 1 exactly when p = q.

Vectors are stored as float32: fidelities carry errors of about 1e-7.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from qstore_pl.db.errors import StateEncodingError

StateKind = Literal["pure", "probs"]
KINDS: tuple[str, ...] = ("pure", "probs")
NORM_TOLERANCE = 1e-5


def namespace_for(kind: str, n_qubits: int) -> str:
    """The namespace (Qdrant collection, Pinecone namespace) of a kind and width."""
    return f"{kind}-{n_qubits}q"


def vector_length(kind: str, n_qubits: int) -> int:
    """Length of the stored vector of a state of ``kind`` on ``n_qubits`` qubits."""
    return 2 ** (n_qubits + 1) if kind == "pure" else 2**n_qubits


def _n_qubits(length: int) -> int:
    n = int(length).bit_length() - 1
    if length < 2 or 2**n != length:
        raise StateEncodingError(
            f"a state needs 2**n entries for n >= 1 qubits; got {length}. "
            "Pass the full state vector (qml.state()) or probability vector (qml.probs())."
        )
    return n


def fix_global_phase(state: np.ndarray) -> np.ndarray:
    """Multiply ``state`` (or each row of a batch) by the phase that makes its
    largest-magnitude amplitude real and positive."""
    state = np.asarray(state, dtype=np.complex128)
    magnitudes = np.abs(state)
    # ties broken towards the lowest index, stable against float noise
    largest = np.argmax(magnitudes >= magnitudes.max(axis=-1, keepdims=True) - 1e-9, axis=-1)
    pivot = np.take_along_axis(state, np.expand_dims(largest, -1), axis=-1)
    return state * (np.conj(pivot) / np.abs(pivot))


def check_pure(state: npt.ArrayLike) -> np.ndarray:
    """``state`` as a complex128 array of unit norm, or a clear error."""
    state = np.asarray(state)
    if state.ndim != 1:
        raise StateEncodingError(
            f"a pure state must be a 1-D array of 2**n amplitudes; got shape {state.shape}"
        )
    _n_qubits(state.size)
    if not np.all(np.isfinite(state)):
        raise StateEncodingError("the state has NaN or infinite amplitudes")
    norm = float(np.linalg.norm(state))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise StateEncodingError(
            f"a pure state must have norm 1; this one has norm {norm:.6g}. "
            "Normalise it (state / np.linalg.norm(state)) or pass kind='probs' for a "
            "probability vector."
        )
    return state.astype(np.complex128) / norm


def check_probs(probs: npt.ArrayLike) -> np.ndarray:
    """``probs`` as a float64 probability vector, or a clear error."""
    probs = np.asarray(probs)
    if probs.ndim != 1 or np.iscomplexobj(probs):
        raise StateEncodingError(
            f"a probability vector must be a real 1-D array; got {probs.dtype} {probs.shape}"
        )
    _n_qubits(probs.size)
    probs = probs.astype(np.float64)
    if not np.all(np.isfinite(probs)) or np.any(probs < -NORM_TOLERANCE):
        raise StateEncodingError("a probability vector must be finite and non-negative")
    total = float(probs.sum())
    if abs(total - 1.0) > NORM_TOLERANCE:
        raise StateEncodingError(
            f"probabilities must sum to 1; these sum to {total:.6g}. Divide by their sum."
        )
    return np.clip(probs, 0.0, None) / total


def encode(state: npt.ArrayLike, kind: str) -> tuple[np.ndarray, int]:
    """The stored float32 vector of a state and its number of qubits."""
    if kind == "pure":
        fixed = fix_global_phase(check_pure(state))
        return np.concatenate([fixed.real, fixed.imag]).astype(np.float32), _n_qubits(fixed.size)
    if kind == "probs":
        probs = check_probs(state)
        return np.sqrt(probs).astype(np.float32), _n_qubits(probs.size)
    raise StateEncodingError(f"unknown state kind {kind!r}; use one of {KINDS}")


def encode_rows(rows: npt.ArrayLike, kind: str) -> tuple[np.ndarray, int]:
    """:func:`encode` for each row of a ``(batch, 2**n)`` array: float32 vectors
    ``(batch, length)`` and the number of qubits. Rows are checked like single states."""
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise StateEncodingError(f"expected a (batch, 2**n) array of states; got {rows.shape}")
    n = _n_qubits(rows.shape[1])
    if not np.all(np.isfinite(rows)):
        raise StateEncodingError("a state has NaN or infinite entries")
    if kind == "pure":
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        _check_total(norms, "a pure state must have norm 1")
        fixed = fix_global_phase(rows / norms)
        return np.concatenate([fixed.real, fixed.imag], axis=1).astype(np.float32), n
    if kind == "probs":
        if np.iscomplexobj(rows) or np.any(rows < -NORM_TOLERANCE):
            raise StateEncodingError("a probability vector must be real and non-negative")
        totals = rows.sum(axis=1, keepdims=True)
        _check_total(totals, "probabilities must sum to 1")
        return np.sqrt(np.clip(rows, 0.0, None) / totals).astype(np.float32), n
    raise StateEncodingError(f"unknown state kind {kind!r}; use one of {KINDS}")


def _check_total(totals: np.ndarray, rule: str) -> None:
    worst = float(np.max(np.abs(totals - 1.0)))
    if worst > NORM_TOLERANCE:
        raise StateEncodingError(f"{rule}; a row is off by {worst:.3g}")


def decode(vector: npt.ArrayLike, kind: str) -> np.ndarray:
    """The state (phase-fixed amplitudes) or probability vector a stored vector holds."""
    vector = np.asarray(vector, dtype=np.float64)
    if kind == "pure":
        half = vector.size // 2
        state = vector[:half] + 1j * vector[half:]
        return state / np.linalg.norm(state)
    roots = vector / np.linalg.norm(vector)
    return roots**2


def amplitudes(vector: npt.ArrayLike, kind: str) -> np.ndarray:
    """Unit vectors whose inner products give the similarity: ψ, or √p."""
    vector = np.asarray(vector, dtype=np.float64)
    if kind == "pure":
        half = vector.shape[-1] // 2
        out = vector[..., :half] + 1j * vector[..., half:]
    else:
        out = vector.astype(np.complex128)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def fidelities(query: np.ndarray, stored: np.ndarray, kind: str) -> np.ndarray:
    """Exact similarity of one encoded query against rows of encoded vectors:
    |⟨ψ|φ⟩|² for pure states, (Σ√(p_i q_i))² for probability vectors."""
    overlaps = amplitudes(stored, kind) @ np.conj(amplitudes(query, kind))
    return np.clip(np.abs(overlaps) ** 2, 0.0, 1.0)
