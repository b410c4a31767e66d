"""Exact nearest states by fidelity, from a store that ranks by dot product.

Pure states are stored as [Re φ, Im φ] of the phase-fixed state (see
:mod:`qstore_pl.db.encoding`), so a backend ranks them by Re⟨χ|φ⟩ for a query vector
χ: not by the fidelity |⟨ψ|φ⟩|², since the phase of the overlap is arbitrary. The
search asks the backend with ``PHASES`` rotated copies χ_k = e^{2πik/K} ψ of the
query; whatever the phase of ⟨ψ|φ⟩, one of them lies within π/K of it, so

    |⟨ψ|φ⟩| · cos(π/K) ≤ max_k Re⟨χ_k|φ⟩ ≤ |⟨ψ|φ⟩|.

A state that none of the K lists returned scores at most the list's last score
s_k in every direction, so its |⟨ψ|φ⟩| is at most max_k s_k / cos(π/K). Once the
``top_k``-th best exact overlap among the candidates exceeds that bound, no state
outside them can be nearer: the result is the exact top-k by fidelity (for a
backend that ranks exactly, as the embedded store and the Pinecone emulator do).
Until then the lists that could still hide a nearer state are deepened.

Probability vectors are stored as √p, whose dot product is the Bhattacharyya
coefficient: it ranks by fidelity directly, one query suffices.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from qstore_pl.db import encoding
from qstore_pl.db.backends.base import Match, VectorBackend
from qstore_pl.db.filters import Condition

logger = logging.getLogger(__name__)

PHASES = 4
_ALIGNMENT = math.cos(math.pi / PHASES)
_GROWTH = 4  # how much deeper a list is asked when the bound is not yet met
_SCORE_SLACK = 1e-5  # float32 scores against float64 overlaps


def nearest(
    backend: VectorBackend,
    namespace: str,
    vector: np.ndarray,
    kind: str,
    top_k: int,
    candidates: int,
    conditions: list[Condition],
) -> list[Match]:
    """Candidates that provably contain the ``top_k`` nearest states by fidelity.

    Parameters
    ----------
    vector : numpy.ndarray
        The encoded query (:func:`qstore_pl.db.encoding.encode`).
    candidates : int
        How many matches each backend query asks for first.
    """
    if kind != "pure":
        return backend.query(namespace, vector, max(candidates, top_k), conditions)
    psi = encoding.amplitudes(vector, "pure")
    directions = []
    for k in range(PHASES):
        rotated = np.exp(2j * np.pi * k / PHASES) * psi
        directions.append(np.concatenate([rotated.real, rotated.imag]).astype(np.float32))
    limit = getattr(backend, "max_top_k", math.inf)  # matches one query may return
    depth = [min(max(candidates, top_k), limit)] * PHASES
    floors = [math.inf] * PHASES
    found: dict[str, Match] = {}
    todo = list(range(PHASES))
    while todo:
        for k in todo:
            matches = backend.query(namespace, directions[k], int(depth[k]), conditions)
            for match in matches:
                found.setdefault(match.record.id, match)
            if len(matches) < depth[k]:
                return list(found.values())  # this list holds every matching state
            floors[k] = matches[-1].score
        kth = _kth_overlap(psi, list(found.values()), top_k)
        threshold = kth * _ALIGNMENT - _SCORE_SLACK
        todo = [k for k in range(PHASES) if floors[k] >= threshold]
        if todo and all(depth[k] >= limit for k in todo):
            logger.warning(
                "the top %d states could not be proven exact within %s's limit of %d "
                "matches per query; the hits are the nearest of %d candidates",
                top_k,
                getattr(backend, "location", "the store"),
                limit,
                len(found),
            )
            break
        for k in todo:
            depth[k] = min(depth[k] * _GROWTH, limit)
    return list(found.values())


def _kth_overlap(psi: np.ndarray, matches: list[Match], top_k: int) -> float:
    """The ``top_k``-th largest |⟨ψ|φ⟩| among the matches (0 when there are fewer)."""
    if len(matches) < top_k:
        return 0.0
    length = 2 * psi.size
    stored = encoding.amplitudes(np.stack([m.record.vector[:length] for m in matches]), "pure")
    overlaps = np.abs(stored @ np.conj(psi))
    return float(np.partition(overlaps, len(overlaps) - top_k)[len(overlaps) - top_k])
