"""Qdrant: the embedded default (local mode, on disk or in memory) and Qdrant servers.

Local mode (``QdrantClient(path=...)`` or ``":memory:"``) runs in-process with no
server; ``QdrantClient(url=...)`` talks to a server through the same calls. One
collection per namespace, created on first write with the dimension of its vectors
and the dot-product distance.

Local mode keeps each collection's points in SQLite and commits every point on its
own; with SQLite's defaults that is a disk flush per point (about 60 points/s).
The embedded store switches its files to write-ahead logging with
``synchronous=NORMAL``: thousands of points per second, and a committed write
survives the process being killed; an operating-system crash or power loss can lose
the writes since the last checkpoint, unless :meth:`QdrantBackend.sync` has fsynced
the store's files since (the recorder does before it removes states from its spool).
Even so a commit per point was a third of an upsert's time, so the embedded store
commits each upsert once: its points reach the file together or not at all.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from qstore_pl.db.backends.base import Match, Record
from qstore_pl.db.errors import StoreError, StoreUnavailableError
from qstore_pl.db.filters import Condition
from qstore_pl.support.stable_storage import fsync_tree

PREFIX = "qstore_"

#: Seconds to wait for an embedded store's directory lock: a recorder's delivery
#: process hands the directory back (or dies with its killed parent) within moments.
LOCK_WAIT = 10.0


class QdrantBackend:
    """A :class:`~qstore_pl.db.backends.base.VectorBackend` on Qdrant.

    Parameters
    ----------
    path : str or PathLike, optional
        Directory of an embedded (local-mode) store; created if missing.
    url : str, optional
        URL of a Qdrant server instead of a local store.
    api_key : str, optional
        API key of a Qdrant server (never printed).
    """

    max_dimension = None

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
    ):
        from qdrant_client import QdrantClient

        #: The embedded store's directory (``None`` for servers and in-memory stores):
        #: one process at a time may open it.
        self.local_path = None if url is not None or path is None else str(path)
        if url is not None:
            self._client = QdrantClient(url=url, api_key=api_key)
            self.location = f"qdrant:{url}"
        elif path is not None:
            self._client = _open_local(str(path))
            self.location = f"qdrant:{path}"
        else:
            self._client = QdrantClient(location=":memory:")
            self.location = "qdrant::memory:"
        self._lock = threading.Lock()  # local mode is not thread-safe
        self._dimensions: dict[str, int] = {}
        # Close when collected or, at the latest, at interpreter exit while imports
        # still work: qdrant's own __del__ imports portalocker and prints a traceback
        # when it runs during shutdown. Recorders registered later flush first.
        self._finalizer = weakref.finalize(self, self._client.close)
        self._tuned: set[str] = set()

    def __repr__(self) -> str:
        return f"QdrantBackend({self.location})"

    def _call(self, method: str, *args, **kwargs):
        try:
            with self._lock, self._one_commit(method, *args):
                return getattr(self._client, method)(*args, **kwargs)
        except (ConnectionError, TimeoutError, OSError) as err:
            raise StoreUnavailableError(f"{self.location} is unreachable: {err}") from err
        except Exception as err:
            if type(err).__name__ in {"ResponseHandlingException", "ConnectError"}:
                raise StoreUnavailableError(f"{self.location} is unreachable: {err}") from err
            raise StoreError(f"{self.location} refused {method}: {err}") from err

    def _collection(self, namespace: str) -> str:
        return PREFIX + namespace

    def _ensure(self, namespace: str, dimension: int) -> None:
        from qdrant_client import models

        known = self._dimensions.get(namespace) if self._exists(namespace) else None
        if known is None:
            params = models.VectorParams(size=dimension, distance=models.Distance.DOT)
            self._call("create_collection", self._collection(namespace), vectors_config=params)
            known = dimension
        if known != dimension:
            raise StoreError(
                f"namespace {namespace!r} holds vectors of length {known}, not {dimension}"
            )
        self._dimensions[namespace] = known
        self._tune_local_storage(namespace)

    def _tune_local_storage(self, namespace: str) -> None:
        """Write-ahead logging for a local-mode collection's SQLite file (see the
        module notes); a no-op for servers and in-memory stores."""
        if namespace in self._tuned:
            return
        self._tuned.add(namespace)
        # qdrant-client has no option for local mode's SQLite settings, so this reaches
        # into its private QdrantLocal (collections -> storage -> sqlite3 connection);
        # the getattr chain makes it a no-op should those internals change
        local = getattr(self._client, "_client", None)
        collection = getattr(local, "collections", {}).get(self._collection(namespace))
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if connection is not None:
            with self._lock:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _one_commit(self, method: str, *args) -> Iterator[None]:
        """Around a local-mode ``upsert`` (called under the lock): one commit for all
        its points instead of one per point, a no-op otherwise.

        Local mode persists each point inside ``with connection:``, a commit per point;
        while the call runs its collection's connection is replaced by one whose
        ``with`` block does not commit, and the call's writes are committed (or rolled
        back) together. A rolled-back call leaves the points in local mode's memory but
        not on disk: the caller sees the error and writes them again (the recorder
        keeps them in its spool until an upsert succeeds).
        """
        persistence: Any = None
        if method == "upsert" and args:
            local = getattr(self._client, "_client", None)
            collection = getattr(local, "collections", {}).get(args[0])
            persistence = getattr(collection, "storage", None)
        connection = getattr(persistence, "storage", None)
        if not isinstance(connection, sqlite3.Connection):
            yield
            return
        persistence.storage = _NoCommitPerBlock(connection)
        try:
            yield
        except BaseException:
            connection.rollback()
            raise
        else:
            connection.commit()
        finally:
            persistence.storage = connection

    def _exists(self, namespace: str) -> bool:
        """Whether the namespace's collection exists (its dimension is then known)."""
        if namespace in self._dimensions:
            return True
        if not self._call("collection_exists", self._collection(namespace)):
            return False
        info = self._call("get_collection", self._collection(namespace))
        self._dimensions[namespace] = info.config.params.vectors.size
        return True

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        from qdrant_client import models

        if not records:
            return
        self._ensure(namespace, len(records[0].vector))
        batch = models.Batch(
            ids=[r.id for r in records],
            vectors=[np.asarray(r.vector, dtype=np.float32).tolist() for r in records],
            payloads=[dict(r.metadata) for r in records],
        )
        self._call("upsert", self._collection(namespace), points=batch, wait=True)

    def query(
        self, namespace: str, vector: np.ndarray, top_k: int, conditions: list[Condition]
    ) -> list[Match]:
        if not self._exists(namespace):
            return []
        response = self._call(
            "query_points",
            self._collection(namespace),
            query=np.asarray(vector, dtype=np.float32).tolist(),
            limit=top_k,
            query_filter=to_qdrant(conditions),
            with_payload=True,
            with_vectors=True,
        )
        return [Match(_record(p), float(p.score)) for p in response.points]

    def fetch(self, namespace: str, ids: Sequence[str]) -> dict[str, Record]:
        if not ids or not self._exists(namespace):
            return {}
        points = self._call(
            "retrieve", self._collection(namespace), ids=list(ids), with_vectors=True
        )
        return {str(p.id): _record(p) for p in points}

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if ids and self._exists(namespace):
            selector = models.PointIdsList(points=list(ids))
            self._call("delete", self._collection(namespace), points_selector=selector)

    def counts(self) -> dict[str, int]:
        names = [c.name for c in self._call("get_collections").collections]
        return {
            name[len(PREFIX) :]: self._call("count", name, exact=True).count
            for name in sorted(names)
            if name.startswith(PREFIX)
        }

    def scan(self, namespace: str, batch_size: int = 256) -> Iterator[Record]:
        return scan_pages(lambda offset: self.page(namespace, offset, batch_size))

    def page(self, namespace: str, offset: Any, batch_size: int = 256) -> tuple[list[Record], Any]:
        """One page of :meth:`scan`: records from ``offset`` (``None``: the first) and
        the next page's offset (``None`` after the last)."""
        if not self._exists(namespace):
            return [], None
        points, offset = self._call(
            "scroll",
            self._collection(namespace),
            limit=batch_size,
            offset=offset,
            with_payload=True,
            with_vectors=True,
        )
        return [_record(p) for p in points], offset

    def sync(self) -> None:
        """Put an embedded store's committed writes on stable storage: fsync every
        file and directory of its directory (the collections' SQLite files and
        logs, local mode's ``meta.json``, which it writes without an fsync). Servers
        and in-memory stores: nothing to do here (a server's durability is its own)."""
        if self.local_path is None:
            return
        with self._lock:  # no write half-way through
            fsync_tree(self.local_path)

    def close(self) -> None:
        self._finalizer()  # closes once, however often it is called


class _NoCommitPerBlock:
    """A SQLite connection whose ``with`` block leaves the transaction open (see
    :meth:`QdrantBackend._one_commit`); everything else is the connection's."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    def __enter__(self) -> _NoCommitPerBlock:
        return self

    def __exit__(self, *exc: object) -> None:
        """Neither commit nor roll back: the whole upsert does, once."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def scan_pages(page: Callable[[Any], tuple[list[Record], Any]]) -> Iterator[Record]:
    """Every record of the pages ``page(offset)`` returns, from offset ``None`` until
    the next offset is ``None`` (:meth:`QdrantBackend.page`, here or in a delivery
    process)."""
    offset = None
    while True:
        records, offset = page(offset)
        yield from records
        if offset is None:
            return


def _open_local(path: str):
    """A local-mode client on ``path``, waiting up to :data:`LOCK_WAIT` seconds for
    another process (a recorder's delivery process) to release the directory."""
    from qdrant_client import QdrantClient

    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            return QdrantClient(path=path)
        except RuntimeError as err:  # local mode locks its directory
            if time.monotonic() > deadline:
                raise StoreError(
                    f"cannot open the embedded store at {path}: {err}. Close the other "
                    "client using it (one process at a time; a StateRecorder's delivery "
                    "process holds it until the recorder is closed), or use a Qdrant server."
                ) from err
            time.sleep(0.05)


def _record(point) -> Record:
    return Record(str(point.id), np.asarray(point.vector, dtype=np.float32), point.payload or {})


def to_qdrant(conditions: list[Condition]) -> Any:
    """Qdrant's filter for the conditions (``None`` for none)."""
    from qdrant_client import models

    if not conditions:
        return None

    def equal(field: str, value) -> Any:
        if isinstance(value, float) and not isinstance(value, bool):
            return models.FieldCondition(key=field, range=models.Range(gte=value, lte=value))
        return models.FieldCondition(key=field, match=models.MatchValue(value=value))

    must = []
    for c in conditions:
        if c.op == "$eq":
            must.append(equal(c.field, c.value))
        elif c.op == "$in":
            must.append(models.Filter(should=[equal(c.field, v) for v in c.value]))
        else:
            bound = {c.op[1:]: c.value}
            must.append(models.FieldCondition(key=c.field, range=models.Range(**bound)))
    return models.Filter(must=must)
