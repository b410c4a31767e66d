"""Pinecone through its official SDK (``pinecone``; ``pinecone-client`` is deprecated).

One index holds every namespace. A Pinecone index has one dimension (at most
20,000), so shorter vectors are padded with zeros, which changes no dot product;
a pure state of n qubits needs 2·2**n dimensions, so a 16,384-dimension index holds
pure states of up to 13 qubits (probability vectors up to 14).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from qstore_pl.db.backends.base import Match, Record
from qstore_pl.db.errors import StoreError, StoreUnavailableError
from qstore_pl.db.filters import Condition, to_pinecone

PINECONE_MAX_DIMENSION = 20_000
_MAX_RECORDS_PER_UPSERT = 1000
_MAX_BYTES_PER_UPSERT = 2_000_000
_BYTES_PER_VALUE = 20  # a float in the JSON body, generously
_BYTES_PER_METADATA = 4_000


class PineconeBackend:
    """A :class:`~qstore_pl.db.backends.base.VectorBackend` on a Pinecone index.

    Parameters
    ----------
    index_host : str
        The index's data-plane host, e.g. ``"https://my-index-abc.svc.pinecone.io"``.
    api_key : str, optional
        Defaults to the ``PINECONE_API_KEY`` environment variable; never printed.
    timeout : float
        Seconds per request.
    """

    #: Most matches one query returns with their values (Pinecone's limit).
    max_top_k = 1000

    def __init__(self, index_host: str, api_key: str | None = None, *, timeout: float = 10.0):
        from pinecone import Index

        key = api_key or os.environ.get("PINECONE_API_KEY")
        if not key:
            raise StoreError(
                "no Pinecone API key: set the PINECONE_API_KEY environment variable "
                "or pass api_key="
            )
        self.location = f"pinecone:{index_host}"
        self._index = Index(host=index_host, api_key=key, timeout=timeout)
        self._dimension: int | None = None
        try:  # known from the start, the limit needs no request while the store is down
            self.max_dimension  # noqa: B018
        except StoreUnavailableError:
            pass  # asked again on first use

    def __repr__(self) -> str:
        return f"PineconeBackend({self.location})"

    def _call(self, method: str, **kwargs):
        from pinecone.errors import (
            ApiError,
            PineconeConnectionError,
            PineconeError,
            PineconeTimeoutError,
            RateLimitError,
            ServiceError,
        )

        try:
            return getattr(self._index, method)(**kwargs)
        except (PineconeConnectionError, PineconeTimeoutError, RateLimitError, ServiceError) as e:
            raise StoreUnavailableError(
                f"{self.location} unavailable during {method}: {type(e).__name__}: {e}"
            ) from e
        except (ApiError, PineconeError) as err:
            raise StoreError(f"{self.location} refused {method}: {err}") from err

    @property
    def max_dimension(self) -> int:
        """The index's dimension (asked once)."""
        if self._dimension is None:
            stats = self._call("describe_index_stats")
            self._dimension = int(stats.dimension or PINECONE_MAX_DIMENSION)
        return self._dimension

    def _pad(self, vector: np.ndarray) -> list[float]:
        dimension = self.max_dimension
        if len(vector) > dimension:
            raise StoreError(f"a vector of length {len(vector)} exceeds the index's {dimension}")
        padded = np.zeros(dimension, dtype=np.float32)
        padded[: len(vector)] = vector
        return padded.tolist()

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        per_record = self.max_dimension * _BYTES_PER_VALUE + _BYTES_PER_METADATA
        size = max(1, min(_MAX_RECORDS_PER_UPSERT, _MAX_BYTES_PER_UPSERT // per_record))
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            vectors = [
                {"id": r.id, "values": self._pad(r.vector), "metadata": dict(r.metadata)}
                for r in chunk
            ]
            self._call("upsert", vectors=vectors, namespace=namespace, show_progress=False)

    def query(
        self, namespace: str, vector: np.ndarray, top_k: int, conditions: list[Condition]
    ) -> list[Match]:
        response = self._call(
            "query",
            vector=self._pad(vector),
            top_k=top_k,
            namespace=namespace,
            filter=to_pinecone(conditions),
            include_values=True,
            include_metadata=True,
        )
        return [Match(_record(m), float(m.score)) for m in response.matches]

    def fetch(self, namespace: str, ids: Sequence[str]) -> dict[str, Record]:
        if not ids:
            return {}
        response = self._call("fetch", ids=list(ids), namespace=namespace)
        return {key: _record(v) for key, v in response.vectors.items()}

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        if ids:
            self._call("delete", ids=list(ids), namespace=namespace)

    def counts(self) -> dict[str, int]:
        stats = self._call("describe_index_stats")
        return {name: s.vector_count for name, s in sorted(stats.namespaces.items())}

    def scan(self, namespace: str, batch_size: int = 100) -> Iterator[Record]:
        token = None
        while True:
            page = self._call(
                "list_paginated", namespace=namespace, limit=batch_size, pagination_token=token
            )
            ids = [item.id for item in page.vectors]
            fetched = self.fetch(namespace, ids)
            yield from (fetched[i] for i in ids if i in fetched)
            token = page.pagination.next if page.pagination else None
            if not token:
                return

    def sync(self) -> None:
        """Nothing to do: Pinecone acknowledges a write once it is durable."""

    def close(self) -> None:
        self._index.close()


def _record(vector) -> Record:
    return Record(vector.id, np.asarray(vector.values, dtype=np.float32), vector.metadata or {})
