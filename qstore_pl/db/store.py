"""The state store: quantum states in a vector store, searched by fidelity."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore_pl.db import encoding, search
from qstore_pl.db.backends.base import Record, VectorBackend
from qstore_pl.db.errors import FilterError, MetadataError, NoStatesError, StateDimensionError
from qstore_pl.db.filters import parse_filter

RESULTS_NAMESPACE = "results"
_RESERVED = ("kind", "n_qubits")
_METADATA_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Hit:
    """A state found by :meth:`StateStore.query_similar`.

    Attributes
    ----------
    id : str
        Its id in the store.
    fidelity : float
        |⟨ψ|φ⟩|² for pure states, (Σ√(p_i q_i))² for probability vectors (the
        classical fidelity, the Bhattacharyya coefficient squared), computed from the
        stored values (float32: about 1e-7 absolute error).
    metadata : dict
        What was stored with it (circuit hash, parameters, backend, shots, ...).
    state : numpy.ndarray
        The stored state (phase-fixed amplitudes) or probability vector.
    """

    id: str
    fidelity: float
    metadata: dict[str, Any]
    state: np.ndarray


@dataclass(frozen=True)
class StoredState:
    """A state as stored: kind, width, values and metadata."""

    id: str
    kind: str
    n_qubits: int
    state: np.ndarray
    metadata: dict[str, Any]


@dataclass(frozen=True)
class EncodedState:
    """A state ready to write: what the recorder spools and replays."""

    id: str
    namespace: str
    vector: np.ndarray
    metadata: dict[str, Any]


@dataclass(frozen=True)
class StoreStats:
    """Records per namespace of a store."""

    location: str
    namespaces: dict[str, int]

    @property
    def states(self) -> int:
        """Number of stored states (every namespace but the result cache's)."""
        return sum(n for name, n in self.namespaces.items() if name != RESULTS_NAMESPACE)

    def __str__(self) -> str:
        lines = [f"store {self.location}: {self.states} states"]
        lines += [f"  {name:<16}{count:>10}" for name, count in self.namespaces.items()]
        return "\n".join(lines)


class StateStore:
    """Quantum states and probability vectors in a vector store, searched by fidelity.

    Build one with :func:`qstore_pl.db.open_store`. States of one kind and width
    share a namespace (``"pure-8q"``, ``"probs-8q"``); see
    :mod:`qstore_pl.db.encoding` for what is stored and what the fidelity means.

    Parameters
    ----------
    backend : VectorBackend
        Where the vectors live.
    """

    def __init__(self, backend: VectorBackend):
        self.backend = backend

    def __repr__(self) -> str:
        return f"StateStore({self.backend.location})"

    @property
    def location(self) -> str:
        """Where the store is (no secrets)."""
        return self.backend.location

    # ----------------------------------------------------------------- writing
    def encode(
        self,
        state: npt.ArrayLike,
        kind: str = "pure",
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> EncodedState:
        """Check and encode a state (see :meth:`add`); the width is checked on writing."""
        vector, n_qubits = encoding.encode(state, kind)
        meta = check_metadata(metadata or {})
        meta.update(kind=kind, n_qubits=n_qubits)
        return EncodedState(
            str(id or uuid.uuid4()), encoding.namespace_for(kind, n_qubits), vector, meta
        )

    def check_width(self, kind: str, n_qubits: int) -> None:
        """Raise :class:`StateDimensionError` when the store cannot hold the state."""
        length = encoding.vector_length(kind, n_qubits)
        limit = self.backend.max_dimension
        if limit is not None and length > limit:
            widest = max(n for n in range(1, 64) if encoding.vector_length(kind, n) <= limit)
            raise StateDimensionError(
                f"a {kind} state of {n_qubits} qubits is stored as {length} numbers, but "
                f"{self.location} holds vectors of at most {limit} (up to {widest} qubits "
                f"for {kind} states). Use the embedded store (open_store('embedded')) or a "
                "Qdrant server (open_store('qdrant', url=...)), which have no such limit."
            )

    def add(
        self,
        state: npt.ArrayLike,
        *,
        kind: str = "pure",
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> str:
        """Store one state and return its id.

        Parameters
        ----------
        state : array_like
            A normalised state vector (``kind="pure"``, 2**n complex amplitudes) or a
            probability vector (``kind="probs"``, 2**n non-negative numbers summing to 1).
        kind : {"pure", "probs"}
        metadata : dict, optional
            Flat: string, number or boolean values, or lists of strings.
        id : str, optional
            A UUID string; a new one by default. Writing an existing id overwrites it.
        """
        entry = self.encode(state, kind, metadata, id)
        self.check_width(kind, entry.metadata["n_qubits"])
        self.write([entry])
        return entry.id

    def write(self, entries: Sequence[EncodedState]) -> None:
        """Write encoded states (idempotent: the same entries twice store them once)."""
        by_namespace: dict[str, list[Record]] = {}
        for e in entries:
            by_namespace.setdefault(e.namespace, []).append(Record(e.id, e.vector, e.metadata))
        for namespace, records in by_namespace.items():
            self.backend.upsert(namespace, records)

    def sync(self) -> None:
        """Put what the store has acknowledged on stable storage (the embedded store
        fsyncs its files; servers and Pinecone guarantee it themselves)."""
        self.backend.sync()

    # ----------------------------------------------------------------- reading
    def query_similar(
        self,
        state: npt.ArrayLike,
        top_k: int = 5,
        filter: Mapping[str, Any] | None = None,
        *,
        kind: str = "pure",
        candidates: int | None = None,
    ) -> list[Hit]:
        """The stored states with the highest fidelity to ``state``, best first.

        Parameters
        ----------
        state : array_like
            A pure state or probability vector (``kind``); its global phase is irrelevant.
        top_k : int
            How many hits to return.
        filter : dict, optional
            Metadata conditions, e.g. ``{"backend": "lightning.qubit"}`` (see
            :mod:`qstore_pl.db.filters`).
        kind : {"pure", "probs"}
            Compare with stored pure states or with stored probability vectors.
        candidates : int, optional
            How many matches each store query asks for first (default
            ``max(4 * top_k, 128)``: a store scans every vector per query, whatever
            the number returned, so a deeper first query saves rounds); the search
            asks for more until the result is provably the exact top-k (see
            :mod:`qstore_pl.db.search`).

        Returns
        -------
        list[Hit]
            At most ``top_k`` hits, best first: the ``top_k`` stored states of this
            kind and width with the highest fidelity to ``state`` (ties in any order);
            their fidelities are exact for the stored values.

        Raises
        ------
        NoStatesError
            The store holds no state of this kind and width (names those it holds).
        FilterError
            A filter names a metadata key that no state of this kind and width has.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1; got {top_k}")
        vector, n_qubits = encoding.encode(state, kind)
        self.check_width(kind, n_qubits)
        conditions = parse_filter(filter)
        pool = candidates or max(4 * top_k, 128)
        namespace = encoding.namespace_for(kind, n_qubits)
        matches = search.nearest(self.backend, namespace, vector, kind, top_k, pool, conditions)
        if not matches:
            self._explain_no_match(kind, n_qubits, conditions)
            return []
        length = len(vector)
        stored = np.stack([m.record.vector[:length] for m in matches])
        scores = encoding.fidelities(vector, stored, kind)
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [
            Hit(
                id=matches[i].record.id,
                fidelity=float(scores[i]),
                metadata=dict(matches[i].record.metadata),
                state=encoding.decode(stored[i], kind),
            )
            for i in order
        ]

    def _explain_no_match(self, kind: str, n_qubits: int, conditions: list) -> None:
        """Raise when an empty result comes from a mistake rather than the data: no
        states of this kind and width, or a filter key that no such state has."""
        namespace = encoding.namespace_for(kind, n_qubits)
        held = {name: count for name, count in self.backend.counts().items() if count}
        held.pop(RESULTS_NAMESPACE, None)
        if namespace not in held:
            have = ", ".join(f"{name} ({count})" for name, count in sorted(held.items()))
            raise NoStatesError(
                f"{self.location} holds no {kind} states of {n_qubits} qubits "
                f"(namespace {namespace}); it holds: {have or 'no states at all'}. "
                "Query with a state of a stored width (kind='probs' for probability vectors)."
            )
        missing = {c.field for c in conditions}
        keys: set[str] = set()
        for record in self.backend.scan(namespace):
            keys.update(record.metadata)
            missing -= keys
            if not missing:
                return  # the keys exist: nothing matches their values, a true empty
        raise FilterError(
            f"no stored state in {namespace} has the metadata key(s) "
            f"{sorted(missing)}; their keys are {sorted(keys)}. Check the spelling."
        )

    def get(self, ids: Sequence[str]) -> list[StoredState]:
        """The stored states with these ids (in any namespace), in the order given."""
        found: dict[str, StoredState] = {}
        for namespace in self.state_namespaces():
            for key, record in self.backend.fetch(namespace, list(ids)).items():
                found[key] = _stored(record)
        return [found[i] for i in ids if i in found]

    def delete(self, ids: Sequence[str]) -> None:
        """Delete states by id (ids that do not exist are ignored)."""
        for namespace in self.state_namespaces():
            self.backend.delete(namespace, list(ids))

    def states(self, namespace: str | None = None) -> Iterator[StoredState]:
        """Every stored state, one namespace after the other (or one namespace)."""
        for name in [namespace] if namespace else self.state_namespaces():
            yield from (_stored(r) for r in self.backend.scan(name))

    def state_namespaces(self) -> list[str]:
        """The namespaces that hold states."""
        return [n for n in self.backend.counts() if n != RESULTS_NAMESPACE]

    def stats(self) -> StoreStats:
        """Records per namespace."""
        return StoreStats(self.location, self.backend.counts())

    # --------------------------------------------------- result-cache entries
    def put_result(self, key: str, metadata: Mapping[str, Any]) -> None:
        """Store a result-cache entry under ``key`` (a UUID string)."""
        # a one-dimensional unit vector: the entry is only ever fetched by id
        self.backend.upsert(
            RESULTS_NAMESPACE, [Record(key, np.ones(1, np.float32), check_metadata(metadata))]
        )

    def get_result(self, key: str) -> dict[str, Any] | None:
        """The result-cache entry stored under ``key``, or ``None``."""
        record = self.backend.fetch(RESULTS_NAMESPACE, [key]).get(key)
        return dict(record.metadata) if record else None

    def close(self) -> None:
        """Release the backend's connections and locks."""
        self.backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stored(record: Record) -> StoredState:
    meta = dict(record.metadata)
    kind, n_qubits = meta["kind"], int(meta["n_qubits"])
    vector = record.vector[: encoding.vector_length(kind, n_qubits)]
    return StoredState(record.id, kind, n_qubits, encoding.decode(vector, kind), meta)


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Flat metadata every store accepts: scalars and lists of strings; ``None`` dropped."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in _RESERVED:
            raise MetadataError(f"metadata key {key!r} is reserved for the store; rename it")
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            value = list(value)
        elif not isinstance(value, _METADATA_SCALARS):
            raise MetadataError(
                f"metadata {key!r} must be a string, number, boolean or list of strings "
                f"(Pinecone's rule); got {type(value).__name__}. Encode it as a string."
            )
        out[key] = value
    return out
