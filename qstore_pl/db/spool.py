"""A durable local spool: recorded states wait here until the store has them.

SQLite in WAL mode. Every entry is written here before it is sent, and deleted
only once the store has acknowledged it, so a crash or an outage loses nothing;
store writes are idempotent by id, so an entry replayed after a crash that happened
between the store's write and the acknowledgement is still stored once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qstore_pl import paths
from qstore_pl.db.store import EncodedState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    namespace TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL,
    error TEXT NOT NULL
);
"""


def default_spool_path(location: str) -> Path:
    """The spool file of a store: one per store location, in ``$QSTORE_SPOOL_DIR`` or
    the user data dir."""
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return paths.spool_dir() / f"{digest}.sqlite"


class Spool:
    """Entries waiting for the store, in arrival order.

    Parameters
    ----------
    path : str or PathLike
        The SQLite file (created with its directory).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def append(self, entries: Sequence[EncodedState]) -> None:
        """Add entries (one transaction; an id already waiting is kept once)."""
        rows = [_row(e) for e in entries]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO pending (id, namespace, vector, metadata) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def pending(self, limit: int) -> list[EncodedState]:
        """The oldest ``limit`` waiting entries."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, namespace, vector, metadata FROM pending ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [_entry(*row) for row in rows]

    def ack(self, ids: Sequence[str]) -> None:
        """Forget entries the store has acknowledged."""
        with self._lock, self._db:
            self._db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in ids])

    def reject(self, entry: EncodedState, error: str) -> None:
        """Move an entry the store refuses for good out of the queue, keeping it."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO rejected (id, namespace, vector, metadata, error) "
                "VALUES (?, ?, ?, ?, ?)",
                (*_row(entry), error),
            )
            self._db.execute("DELETE FROM pending WHERE id = ?", (entry.id,))

    def counts(self) -> tuple[int, int]:
        """Numbers of waiting and of rejected entries."""
        with self._lock:
            waiting = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
            rejected = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        return waiting, rejected

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


def _row(entry: EncodedState) -> tuple:
    vector = np.asarray(entry.vector, dtype=np.float32).tobytes()
    return entry.id, entry.namespace, vector, json.dumps(entry.metadata)


def _entry(id: str, namespace: str, vector: bytes, metadata: str) -> EncodedState:
    return EncodedState(
        id, namespace, np.frombuffer(vector, dtype=np.float32), json.loads(metadata)
    )
