"""A durable local spool: recorded states wait here until the store has them.

SQLite in WAL mode, written by the thread that records (one transaction per call),
read by the thread that forwards. Two kinds of entry wait here:

* ``pending``: encoded states, ready to send;
* ``circuits``: one row per call whose states the forwarding thread encodes: where
  the backend kept them, its raw amplitudes as one blob (``amplitudes``, numpy
  ``dtype``) with what the encoding needs from the circuit as plain data
  (``facts``, ``parameters``: :class:`~qstore_pl.db.call_facts.CallFacts`), else the
  pickled circuit (``tape``), which the forwarding thread simulates. The training
  thread writes a single row per call and leaves phase fixing, encoding and
  metadata to the forwarding thread, which writes the states to the store and then
  forgets the row (:meth:`Spool.forget_calls`), or, where the store may refuse some
  of them, swaps the row for its states in ``pending`` in one transaction
  (:meth:`Spool.expand`). A row with facts is encoded without PennyLane (a delivery
  process imports it only for a row that needs its circuit).

Spools written by older versions lack some of the ``amplitudes``, ``dtype``,
``facts`` and ``parameters`` columns: opening one adds them (empty: those rows are
read as they were written, circuits unpickled and simulated), so a spool left on
disk by an older version still drains.

Pending states are sent in spool order and acknowledged by position (a cursor:
everything up to the last acknowledged ``seq`` leaves in one range delete), calls by
id. An entry leaves the spool only once the store has acknowledged it (all of a
call's states, or, for a call swapped for its states, once they are in ``pending``):
a crash at any moment loses nothing.
Ids are fixed when an entry is spooled (a circuit's states get ids derived from the
circuit's id) and store writes overwrite by id, so an entry sent again after a crash
between the store's write and the acknowledgement is still stored once.

Durability (``sync``). A killed process (SIGKILL, the OOM killer, a crash of Python)
loses nothing committed, in either mode: the log is in the operating system's page
cache. An operating-system crash or power loss is another matter:

* ``"normal"`` (the default; SQLite WAL with ``synchronous=NORMAL``): a commit does
  not wait for the disk, so such a crash can lose the calls committed since the last
  checkpoint. The delivery checkpoints after every round, which fsyncs the log, and
  fsyncs the store before it removes anything from the spool: once
  ``recorder.flush()`` has returned, every state recorded before it is on stable
  storage (in the store).
* ``"full"`` (``synchronous=FULL``): each commit fsyncs the log before it returns, so a
  call is on stable storage when ``on_execution`` returns; an fsync per call on the
  training thread (0.1 ms to over 10 ms, depending on the disk and its load).

A new spool file is fsynced with its folder (and the folders created for it) when it
is created; SQLite syncs the log's directory entry itself. Both rest on the disk
honouring cache flushes and on a local file system (SQLite's locking does not hold
over NFS).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from qstore_pl.db.call_facts import CallFacts
from qstore_pl.db.store import EncodedState
from qstore_pl.support import paths
from qstore_pl.support.sqlite_wal import use_wal
from qstore_pl.support.stable_storage import fsync_new_entries, missing_directories

SYNC_MODES = ("normal", "full")

_SCHEMA_TABLES = (
    """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS circuits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    states INTEGER NOT NULL,
    tape BLOB NOT NULL,
    metadata TEXT NOT NULL,
    amplitudes BLOB,
    dtype TEXT,
    facts TEXT,
    parameters BLOB
)""",
    """
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL,
    error TEXT NOT NULL
)""",
)

#: Log pages (4 KiB) after which a commit checkpoints by itself (SQLite's default is
#: 1,000): :meth:`Spool.checkpoint` normally does it long before, off the training thread.
_WRITER_CHECKPOINT_PAGES = 10_000

#: Bytes of amplitudes one delivery round reads from the spool at most (past its
#: first call): bounds the round's memory for wide states.
ROUND_BYTES = 64 << 20

#: Columns added to ``circuits`` since the first spool format (opening an old spool adds them).
_ADDED_COLUMNS = (
    ("amplitudes", "BLOB"),
    ("dtype", "TEXT"),
    ("facts", "TEXT"),
    ("parameters", "BLOB"),
)

_INSERT_PENDING = "INSERT INTO pending (id, namespace, vector, metadata) VALUES (?, ?, ?, ?)"
_INSERT_CIRCUIT = (
    "INSERT OR IGNORE INTO circuits "
    "(id, states, tape, metadata, amplitudes, dtype, facts, parameters) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def default_spool_path(location: str) -> Path:
    """The spool file of a store: one per store location, in ``$QSTORE_SPOOL_DIR`` or
    the user data dir."""
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return paths.spool_dir() / f"{digest}.sqlite"


@dataclass(frozen=True)
class SpooledCircuit:
    """A call waiting for its states to be encoded: its id, pickled tape (empty when
    ``facts`` say what the encoding needs), per-call metadata, the amplitudes the
    backend kept, ``(states, 2**n)``, or ``None`` (simulate), and their facts."""

    id: str
    pickled_tape: bytes
    metadata: dict[str, Any]
    amplitudes: np.ndarray | None = None
    facts: CallFacts | None = None

    @cached_property
    def tape(self) -> Any:
        """The circuit, unpickled on first use (which imports PennyLane)."""
        return pickle.loads(self.pickled_tape)


@dataclass(frozen=True)
class CircuitEntry:
    """A call to spool as one row: what :class:`SpooledCircuit` is read back from.

    ``amplitudes`` is the backend's raw ``(states, 2**n)`` array (copied into the
    spool as one blob, any numpy dtype), or ``None`` when the circuit is to be
    simulated; ``facts`` come with amplitudes, and then ``tape`` may be empty."""

    id: str
    states: int
    tape: bytes
    metadata: dict[str, Any]
    amplitudes: np.ndarray | None = None
    facts: CallFacts | None = None


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
        created = missing_directories(self.path)
        is_new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            use_wal(self._db)
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
        # checkpoints (a copy of the log into the file, and an fsync) run here, on the
        # forwarding thread, so that the thread that appends does not wait for the disk
        self._checkpointer = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        with self._transaction():
            for table in _SCHEMA_TABLES:  # the tables, then the columns an old spool lacks
                self._db.execute(table)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(circuits)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in present:
                    self._db.execute(f"ALTER TABLE circuits ADD COLUMN {name} {kind}")
        if is_new:  # SQLite syncs its log's directory entry, not the database file's
            fsync_new_entries(self.path, created)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One explicit transaction: the connection autocommits otherwise, which would
        make every row of an ``executemany`` a commit of its own."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def append(
        self, entries: Sequence[EncodedState], circuits: Sequence[CircuitEntry] = ()
    ) -> None:
        """Add encoded states and calls to encode later, in one transaction."""
        with self._transaction():
            if entries:
                self._db.executemany(_INSERT_PENDING, [_row(e) for e in entries])
            if circuits:
                self._db.executemany(_INSERT_CIRCUIT, [_circuit_row(c) for c in circuits])

    def pending(self, limit: int) -> list[tuple[int, EncodedState]]:
        """The oldest ``limit`` waiting states, with their positions ``seq``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, namespace, vector, metadata FROM pending ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [(seq, _entry(*row)) for seq, *row in rows]

    def circuits(self, limit: int, max_states: int | None = None) -> list[SpooledCircuit]:
        """The oldest calls waiting for their states to be encoded: at most ``limit``
        and, past the first, at most ``max_states`` states or :data:`ROUND_BYTES` of
        amplitudes together."""
        with self._lock:
            sizes = self._db.execute(
                "SELECT seq, states, COALESCE(length(amplitudes), 0) FROM circuits "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            last, states, size = None, 0, 0
            for seq, count, length in sizes:
                states, size = states + count, size + length
                if last is not None and (
                    (max_states is not None and states > max_states) or size > ROUND_BYTES
                ):
                    break
                last = seq
            rows = self._db.execute(
                "SELECT id, states, tape, metadata, amplitudes, dtype, facts, parameters "
                "FROM circuits WHERE seq <= ? ORDER BY seq",
                (last if last is not None else -1,),
            ).fetchall()
        return [_circuit(*row) for row in rows]

    def expand(self, calls: Sequence[tuple[str, Sequence[EncodedState]]]) -> None:
        """Replace spooled calls ``(circuit id, its states)`` by their states, in one
        transaction: the fewer write transactions the delivery takes, the less often
        the training thread's append waits for the spool's write lock."""
        with self._transaction():
            rows = [_row(e) for _, entries in calls for e in entries]
            self._db.executemany(_INSERT_PENDING, rows)
            self._db.executemany(
                "DELETE FROM circuits WHERE id = ?", [(circuit_id,) for circuit_id, _ in calls]
            )

    def forget_calls(self, ids: Sequence[str], count: int) -> None:
        """Forget spooled calls whose ``count`` states the store has acknowledged
        (added to :meth:`delivered`), in one transaction."""
        with self._transaction():
            self._db.executemany("DELETE FROM circuits WHERE id = ?", [(i,) for i in ids])
            self._count_delivered(count)

    def ack_through(self, seq: int, count: int) -> None:
        """Forget the states up to position ``seq``: the store has acknowledged them
        (states are sent in order, so these are exactly the ones sent); ``count`` of
        them were stored (the rest were set aside), added to :meth:`delivered`."""
        with self._transaction():
            self._db.execute("DELETE FROM pending WHERE seq <= ?", (seq,))
            self._count_delivered(count)

    def _count_delivered(self, count: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('delivered', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (count,),
        )

    def delivered(self) -> int:
        """States acknowledged by the store since the spool was created, whichever
        process delivered them (counted in the transaction that forgets them)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'delivered'")
            found = row.fetchone()
        return found[0] if found else 0

    def reject(self, seq: int, entry: EncodedState, error: str) -> None:
        """Move a state the store refuses for good out of the queue, keeping it."""
        with self._transaction():
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

    def checkpoint(self) -> None:
        """Move the write-ahead log into the database file without blocking writers
        (SQLite's ``PASSIVE`` checkpoint). The forwarding thread calls it after each
        round; should nobody call it, the appending connection checkpoints on its own
        once the log passes about 40 MB."""
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError:  # busy: the next round moves the log instead
            pass

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._checkpointer.close()
            self._db.close()


def _row(entry: EncodedState) -> tuple:
    vector = np.asarray(entry.vector, dtype=np.float32).tobytes()
    return entry.id, entry.namespace, vector, json.dumps(entry.metadata)


def _entry(id: str, namespace: str, vector: bytes, metadata: str) -> EncodedState:
    return EncodedState(
        id, namespace, np.frombuffer(vector, dtype=np.float32), json.loads(metadata)
    )


def _circuit_row(entry: CircuitEntry) -> tuple:
    amplitudes = dtype = facts = parameters = None
    if entry.amplitudes is not None:
        array = np.ascontiguousarray(entry.amplitudes)  # a copy: the backend reuses its own
        amplitudes, dtype = array.tobytes(), array.dtype.str
    if entry.facts is not None:
        facts, parameters = entry.facts.to_row()
    meta = json.dumps(entry.metadata)
    return entry.id, entry.states, entry.tape, meta, amplitudes, dtype, facts, parameters


def _circuit(
    id: str,
    states: int,
    tape: bytes,
    metadata: str,
    amplitudes: bytes | None,
    dtype: str | None,
    facts: str | None,
    parameters: bytes | None,
) -> SpooledCircuit:
    rows = None
    if amplitudes is not None:
        rows = np.frombuffer(amplitudes, dtype=np.dtype(dtype)).reshape(states, -1)
    known = None if facts is None else CallFacts.from_row(facts, parameters or b"")
    return SpooledCircuit(id, tape, json.loads(metadata), rows, known)
