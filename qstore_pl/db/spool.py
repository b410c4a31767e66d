"""A durable local spool: recorded states wait here until the store has them.

SQLite in WAL mode, written by the thread that records (one transaction per call),
read by the thread that forwards. Two kinds of entry wait here:

* ``pending``: encoded states, ready to send;
* ``circuits``: circuits whose states nobody has yet (the backend that ran them kept
  none); the forwarding thread simulates them and swaps each for its states in one
  transaction.

States are sent in spool order and acknowledged by position (a cursor: everything
up to the last acknowledged ``seq`` leaves in one range delete). An entry leaves the
spool only once the store has acknowledged it (or, for a circuit, once its states
are in ``pending``): a crash at any moment loses nothing.
Ids are fixed when an entry is spooled (a circuit's states get ids derived from the
circuit's id) and store writes overwrite by id, so an entry sent again after a crash
between the store's write and the acknowledgement is still stored once.

Durability (``sync``): ``"normal"`` (the default) commits without waiting for the
disk: a committed call survives the process being killed (SIGKILL, OOM, a crash),
and an operating-system crash or power loss can lose the last commits. ``"full"``
waits for the disk (an fsync per call): nothing committed is lost even then, at a
cost of milliseconds per call.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qstore_pl.db.store import EncodedState
from qstore_pl.support import paths

SYNC_MODES = ("normal", "full")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS circuits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    states INTEGER NOT NULL,
    tape BLOB NOT NULL,
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

_INSERT_PENDING = "INSERT INTO pending (id, namespace, vector, metadata) VALUES (?, ?, ?, ?)"


def default_spool_path(location: str) -> Path:
    """The spool file of a store: one per store location, in ``$QSTORE_SPOOL_DIR`` or
    the user data dir."""
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return paths.spool_dir() / f"{digest}.sqlite"


@dataclass(frozen=True)
class SpooledCircuit:
    """A circuit waiting to be simulated: its id, tape and per-call metadata."""

    id: str
    tape: Any
    metadata: dict[str, Any]


class Spool:
    """Entries waiting for the store, in arrival order.

    Parameters
    ----------
    path : str or PathLike
        The SQLite file (created with its directory).
    sync : {"normal", "full"}
        What a commit waits for (see the module notes).
    """

    def __init__(self, path: str | os.PathLike[str], sync: str = "normal"):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}; got {sync!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(_SCHEMA)

    def append(
        self, entries: Sequence[EncodedState], circuits: Sequence[tuple[str, int, bytes, dict]] = ()
    ) -> None:
        """Add states and circuits ``(id, number of states, pickled tape, metadata)``
        in one transaction."""
        with self._lock, self._db:
            self._db.executemany(_INSERT_PENDING, [_row(e) for e in entries])
            self._db.executemany(
                "INSERT OR IGNORE INTO circuits (id, states, tape, metadata) VALUES (?, ?, ?, ?)",
                [(i, count, tape, json.dumps(meta)) for i, count, tape, meta in circuits],
            )

    def pending(self, limit: int) -> list[tuple[int, EncodedState]]:
        """The oldest ``limit`` waiting states, with their positions ``seq``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, namespace, vector, metadata FROM pending ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [(seq, _entry(*row)) for seq, *row in rows]

    def circuits(self, limit: int) -> list[SpooledCircuit]:
        """The oldest ``limit`` circuits waiting to be simulated."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, tape, metadata FROM circuits ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpooledCircuit(i, pickle.loads(tape), json.loads(meta)) for i, tape, meta in rows]

    def expand(self, circuit_id: str, entries: Sequence[EncodedState]) -> None:
        """Replace a spooled circuit by its states (one transaction)."""
        with self._lock, self._db:
            self._db.executemany(_INSERT_PENDING, [_row(e) for e in entries])
            self._db.execute("DELETE FROM circuits WHERE id = ?", (circuit_id,))

    def ack_through(self, seq: int) -> None:
        """Forget the states up to position ``seq``: the store has acknowledged them
        (states are sent in order, so these are exactly the ones sent)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM pending WHERE seq <= ?", (seq,))

    def reject(self, seq: int, entry: EncodedState, error: str) -> None:
        """Move a state the store refuses for good out of the queue, keeping it."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO rejected (id, namespace, vector, metadata, error) "
                "VALUES (?, ?, ?, ?, ?)",
                (*_row(entry), error),
            )
            self._db.execute("DELETE FROM pending WHERE seq = ?", (seq,))

    def counts(self) -> tuple[int, int]:
        """Numbers of waiting states (spooled circuits counted by their states) and of
        rejected states."""
        with self._lock:
            waiting = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM pending) + "
                "(SELECT COALESCE(SUM(states), 0) FROM circuits)"
            ).fetchone()[0]
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
