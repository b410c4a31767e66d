"""The protocol every vector-store backend implements.

A backend stores float32 vectors with flat metadata in named namespaces (a Qdrant
collection, a Pinecone namespace) and ranks them by dot product. It knows nothing of
quantum states: encoding and fidelities live in :mod:`qstore_pl.db.store`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qstore_pl.db.filters import Condition


@dataclass(frozen=True)
class Record:
    """A stored vector: id, values and flat metadata."""

    id: str
    vector: np.ndarray
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """A query result: the record and its dot-product score."""

    record: Record
    score: float


class VectorBackend(Protocol):
    """What :class:`~qstore_pl.db.store.StateStore` needs from a vector store.

    Transient failures (unreachable, throttled) raise
    :class:`~qstore_pl.db.errors.StoreUnavailableError`; refused requests raise
    :class:`~qstore_pl.db.errors.StoreError`.
    """

    @property
    def location(self) -> str:
        """Where the store is, without secrets, e.g. ``"qdrant:/path"``."""

    @property
    def max_dimension(self) -> int | None:
        """Longest vector the store takes, ``None`` for no limit."""

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        """Insert or overwrite records (same id: overwritten, so replays are harmless)."""

    def query(
        self, namespace: str, vector: np.ndarray, top_k: int, conditions: list[Condition]
    ) -> list[Match]:
        """The ``top_k`` records with the largest dot product, values included."""

    def fetch(self, namespace: str, ids: Sequence[str]) -> dict[str, Record]:
        """The records with these ids that exist."""

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""

    def counts(self) -> dict[str, int]:
        """Number of records per namespace."""

    def scan(self, namespace: str, batch_size: int = 256) -> Iterator[Record]:
        """Every record of a namespace, values included."""

    def sync(self) -> None:
        """Put acknowledged writes on stable storage (a no-op where the service
        guarantees that itself)."""

    def close(self) -> None:
        """Release connections and file locks."""
