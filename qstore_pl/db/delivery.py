"""Delivery in a process of its own, for a recorder on an embedded store on disk.

Why: Qdrant local mode is Python (about 0.1 ms per state written), so a recorder
thread delivering into it competes with training for the interpreter lock; a child
process does the same work on another core without touching the training process's
interpreter.

Ownership. Local mode locks its directory: one process at a time. While a recorder
delivers through a process, that process owns the store: :func:`take_over` closes the
training process's client (the lock passes to the child) and swaps the store's
backend for a :class:`RemoteBackend`, which forwards every store call (queries, the
result cache, stats, writes) to the child. The training process keeps using the same
:class:`~qstore_pl.db.store.StateStore` object and sees what the child has delivered;
``recorder.flush()`` asks the child to deliver everything spooled so far, so a query
after it sees every state the recorder was handed. :meth:`DeliveryProcess.hand_back`
(``recorder.close()``) stops the child and reopens the store in the training process.

Faults. The spool is shared through SQLite (write-ahead log, safe across processes):
the training process appends, the child encodes, writes and acknowledges exactly as
the recorder's thread would, so the spool's exactly-once argument (ids fixed when
spooled, writes overwrite by id, acknowledgement after the write) holds across a
SIGKILL of either process. A child that dies is started again and replays what is
left; a call in flight is sent again to the new child (every call is idempotent:
reads, and writes and deletes by id). The training process holds the only write end
of a pipe the child watches: when the training process dies the child exits at once,
releasing the directory, and its unsent states wait in the spool for the next recorder.

Once it has delivered what an earlier run left in the spool, the child runs at a
lower scheduling priority (``nice`` 10): on a machine with no idle core, training
keeps the processor and delivery uses what training leaves.

The child is a fresh interpreter (``python -m qstore_pl.db.delivery_child``), not a fork:
forking a training process that runs framework threads is unsafe, and
multiprocessing's spawn re-runs a user's script that has no ``__main__`` guard. It
does not import PennyLane (a call the backend kept the states of is spooled as
amplitudes and plain facts, :mod:`qstore_pl.db.call_facts`) until a spooled circuit
must be simulated or comes from an older spool: it starts in about a second (the
store's client), during which the spool fills and calls to the store wait.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from qstore_pl.db.backends.base import Match, Record
from qstore_pl.db.errors import StoreError, StoreUnavailableError
from qstore_pl.db.filters import Condition

logger = logging.getLogger(__name__)

#: Tries of one call: the first, and again on a child started after a death.
_TRIES = 3
#: Children in a row that may die before they are ready before the recorder gives up.
_FAILED_STARTS = 3
#: Seconds the child waits for its delivery thread to finish a round when stopped.
STOP_WAIT = 5.0


class _ChildGone(Exception):
    """The connection to the child broke: it died (or was killed)."""


class DeliveryProcess:
    """The training process's handle on the child that delivers a spool into an
    embedded store it owns.

    Parameters
    ----------
    store_path : str
        The embedded store's directory (the caller has closed its own client on it).
    options : dict
        The spool path and the delivery settings the child's recorder takes
        (``spool``, ``sync``, ``batch_size``, ``max_delay``, ``max_backoff``).
    """

    def __init__(self, store_path: str, options: dict[str, Any]):
        self.store_path = store_path
        self._options = dict(options, store=store_path)
        self._lock = threading.Lock()  # one exchange at a time on the connection
        self._closing = False
        self._failure: Exception | None = None  # the child could not open the store
        self._failed_starts = 0
        # the child exits when this pipe's write end, held only here, closes
        self._death_read, self._death_write = os.pipe()
        self._spawn()
        self._monitor = threading.Thread(
            target=self._watch, name="qstore-delivery-monitor", daemon=True
        )
        self._monitor.start()

    @property
    def pid(self) -> int:
        """The current child's process id."""
        return self._process.pid

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        path = [package_root, os.environ.get("PYTHONPATH", "")]
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qstore_pl.db.delivery_child",
                json.dumps(self._options),
                str(theirs.fileno()),
                str(self._death_read),
            ],
            pass_fds=(theirs.fileno(), self._death_read),
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p)),
        )
        theirs.close()
        self._connection = Connection(ours.detach())
        self._ready = False

    def _exchange(self, message: tuple | None, timeout: float | None = None) -> Any:
        """Send ``message`` (unless ``None``) and return the reply; :class:`_ChildGone`
        when the connection breaks, :class:`StoreUnavailableError` when no reply comes
        within ``timeout``."""
        try:
            if message is not None:
                self._connection.send(message)
            if timeout is not None and not self._connection.poll(timeout):
                raise StoreUnavailableError(
                    f"the delivery process for {self.store_path} is still starting; "
                    "the recorded states wait in the spool"
                )
            return self._connection.recv()
        except (EOFError, OSError) as err:
            if isinstance(err, StoreError):
                raise
            raise _ChildGone from err

    def _read_ready(self, timeout: float | None) -> None:
        """Wait (under the lock) for the child's first message: ready, or why not."""
        if self._ready:
            return
        if self._failure is not None:
            raise self._failure
        kind, value = self._exchange(None, timeout)
        if kind != "ready":
            self._failure = value
            raise value
        self._ready = True
        self._failed_starts = 0

    def call(self, op: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``op`` in the child and return its result (or raise its exception);
        sent again to a new child if this one dies. ``timeout`` bounds the wait for a
        child that is still starting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closing:
                raise StoreError("the recorder's delivery process was stopped")
            for _ in range(_TRIES):
                try:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    self._read_ready(left)
                    kind, value = self._exchange((op, args))
                except _ChildGone:
                    self._respawn("it died during a call")
                    continue
                if kind == "error":
                    raise value
                return value
        raise StoreUnavailableError(
            f"the delivery process for {self.store_path} died {_TRIES} times during one "
            "call; the recorded states wait in the spool"
        )

    def _respawn(self, why: str) -> None:
        """Start a new child after the current one died (called under the lock);
        after :data:`_FAILED_STARTS` children in a row died before they were ready,
        give up: calls raise why."""
        self._process.kill()  # a no-op for a dead one; a broken connection otherwise
        code = self._process.wait()
        self._connection.close()
        if not self._ready:
            self._failed_starts += 1
            if self._failed_starts >= _FAILED_STARTS:
                self._failure = StoreUnavailableError(
                    f"the delivery process for {self.store_path} exited {_FAILED_STARTS} "
                    f"times before it was ready (last exit status {code}; its error output "
                    "is above); the recorded states wait in the spool"
                )
                return
        logger.warning(
            "the state recorder's delivery process %d stopped (%s, exit status %s); "
            "starting another, which replays the spool",
            self._process.pid,
            why,
            code,
        )
        self._spawn()

    def _watch(self) -> None:
        """Start a new child whenever one dies, unless it could not open the store."""
        while True:
            process = self._process
            process.wait()
            with self._lock:
                if self._closing:
                    return
                if self._process is not process:
                    continue  # a call saw the death first and started another
                try:
                    self._read_ready(0)  # its last message says why, if it did not start
                except (_ChildGone, StoreUnavailableError):
                    pass
                except Exception:
                    return  # it could not open the store: calls raise that, no restarts
                self._respawn("killed")
                if self._failure is not None:
                    return

    def hand_back(self) -> None:
        """Stop the child: it finishes the round in progress, closes the store and
        exits, releasing the directory (what it did not deliver stays spooled)."""
        with self._lock:
            self._closing = True
            try:
                self._read_ready(0)
                self._connection.send(("stop", ()))
                self._connection.recv()
            except Exception:  # starting, dead or failed: nothing to stop cleanly
                pass
            self._connection.close()
            os.close(self._death_write)  # a child still starting exits now
            try:
                self._process.wait(timeout=2 * STOP_WAIT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            os.close(self._death_read)
        self._monitor.join()


class RemoteBackend:
    """A :class:`~qstore_pl.db.backends.base.VectorBackend` whose store is owned by a
    :class:`DeliveryProcess`: every call runs there.

    Parameters
    ----------
    process : DeliveryProcess
        The child that owns the store.
    location : str
        The store's location (as its own backend says it).
    """

    max_dimension = None  # an embedded store

    def __init__(self, process: DeliveryProcess, location: str):
        self._process = process
        self.location = location

    def __repr__(self) -> str:
        return f"RemoteBackend({self.location}, delivery process {self._process.pid})"

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        self._process.call("backend", "upsert", namespace, list(records))

    def query(
        self, namespace: str, vector: np.ndarray, top_k: int, conditions: list[Condition]
    ) -> list[Match]:
        return self._process.call("backend", "query", namespace, vector, top_k, conditions)

    def fetch(self, namespace: str, ids: Sequence[str]) -> dict[str, Record]:
        return self._process.call("backend", "fetch", namespace, list(ids))

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        self._process.call("backend", "delete", namespace, list(ids))

    def counts(self) -> dict[str, int]:
        return self._process.call("backend", "counts")

    def scan(self, namespace: str, batch_size: int = 256) -> Iterator[Record]:
        from qstore_pl.db.backends.qdrant import scan_pages

        def page(offset: Any) -> tuple[list[Record], Any]:
            return self._process.call("backend", "page", namespace, offset, batch_size)

        return scan_pages(page)

    def sync(self) -> None:
        self._process.call("backend", "sync")

    def close(self) -> None:
        """Nothing to release here: the recorder's ``close()`` stops the child."""


def take_over(store: Any, options: dict[str, Any]) -> DeliveryProcess:
    """Hand an embedded store on disk to a new delivery process: close this process's
    client on it and route the store's calls to the child."""
    from qstore_pl.db.backends.qdrant import QdrantBackend

    backend = store.backend
    backend.close()  # releases the directory's lock for the child
    try:
        process = DeliveryProcess(backend.local_path, options)
    except BaseException:
        store.backend = QdrantBackend(backend.local_path)
        raise
    store.backend = RemoteBackend(process, backend.location)
    return process


def hand_back(store: Any, process: DeliveryProcess) -> None:
    """Stop the delivery process and reopen the store in this process."""
    from qstore_pl.db.backends.qdrant import QdrantBackend

    process.hand_back()
    store.backend = QdrantBackend(process.store_path)
