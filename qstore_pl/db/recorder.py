"""``StateRecorder``: a device callback that records the states a model produces.

What is recorded for an executed circuit (one state per broadcast element):

* a finite-shot run whose circuit returns ``qml.probs()``, ``qml.counts()`` or
  ``qml.sample()`` on every wire: the **measured distribution** (kind ``"probs"``,
  ``source="measured"``);
* any other run on a simulator: the circuit's **final pure state** (kind ``"pure"``,
  ``source="simulated"``). The router hands over results, usually expectation
  values, not states, so the recorder re-simulates the recorded circuit with
  PennyLane's ``default.qubit`` functions on its own thread; for a simulator run
  this is exactly the state the backend computed (up to float rounding);
* a hardware run without such a measurement: nothing can be recorded faithfully
  (re-simulating would store an ideal state the hardware never produced); it is
  counted in :attr:`RecorderStats.skipped` with a warning naming the fix. A run
  counts as hardware when its backend is in ``hardware_backends`` or it was
  charged (``cost > 0``).

Writes never block training: :meth:`on_execution` only puts the record on a queue.
A background thread encodes the states, appends them to a durable
:class:`~qstore_pl.db.spool.Spool`, then sends them to the store in batches and
deletes them from the spool once acknowledged. While the store is down the thread
retries with exponential backoff and keeps spooling; a later recorder on the same
spool replays whatever a crashed process left.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from qstore_pl.callbacks import DeviceCallback, ExecutionRecord
from qstore_pl.db.circuits import (
    final_states,
    measured_distributions,
    parameter_rows,
    structure_hash,
)
from qstore_pl.db.errors import StateEncodingError, StoreError, StoreUnavailableError
from qstore_pl.db.spool import Spool, default_spool_path
from qstore_pl.db.store import EncodedState, StateStore

logger = logging.getLogger(__name__)

FORWARD_TASKS = ("execute", "execute+jacobian", "execute+vjp")
_MAX_PARAMETERS_IN_METADATA = 1000  # Pinecone metadata is limited to 40 KB


@dataclass(frozen=True)
class RecorderStats:
    """What a recorder has done so far.

    Attributes
    ----------
    received : int
        Executions handed to :meth:`StateRecorder.on_execution`.
    spooled : int
        States computed and written to the spool.
    delivered : int
        States the store has acknowledged.
    waiting : int
        States in the spool, not yet acknowledged (including earlier runs').
    rejected : int
        States the store refused for good; kept in the spool's ``rejected`` table.
    skipped : int
        Executions with nothing faithful to record (see the module notes).
    last_error : str or None
        The most recent store failure.
    """

    received: int
    spooled: int
    delivered: int
    waiting: int
    rejected: int
    skipped: int
    last_error: str | None


class StateRecorder(DeviceCallback):
    """Record the states of every circuit the router runs into a :class:`StateStore`.

    Parameters
    ----------
    store : StateStore
        Where the states go.
    spool : str or PathLike, optional
        The durable spool file; by default one per store in the user data directory.
    tags : Sequence[str]
        Stored with every state (metadata ``tags``), e.g. ``["run-42", "training"]``.
    hardware_backends : Collection[str]
        Backend names that are real hardware (besides any run that was charged).
    batch_size : int
        States per store write.
    max_delay : float
        Seconds a state may wait for a batch to fill before it is sent.
    max_backoff : float
        Longest wait, in seconds, between retries while the store is unavailable.

    **Example**

    >>> store = open_store(path=None)
    >>> recorder = StateRecorder(store)
    >>> dev = qml.device("qstore.router", wires=4, callbacks=[recorder])
    >>> ...  # train
    >>> recorder.flush()  # everything recorded so far is in the store
    """

    def __init__(
        self,
        store: StateStore,
        *,
        spool=None,
        tags: Sequence[str] = (),
        hardware_backends: Collection[str] = (),
        batch_size: int = 256,
        max_delay: float = 0.25,
        max_backoff: float = 5.0,
    ):
        self.store = store
        self.spool = Spool(spool or default_spool_path(store.location))
        self.tags = [str(t) for t in tags]
        self.hardware_backends = frozenset(hardware_backends)
        self.run_id = uuid.uuid4().hex[:12]
        self._batch_size = batch_size
        self._max_delay = max_delay
        self._max_backoff = max_backoff
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._received = self._handled = self._spooled = self._delivered = self._skipped = 0
        self._waiting, self._rejected = self.spool.counts()  # a crashed run's leftovers
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._last_error: str | None = None
        self._warned: set[str] = set()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._loop, name="qstore-state-recorder", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"StateRecorder(store={self.store.location}, spool={self.spool.path})"

    # ------------------------------------------------------- training thread
    def on_execution(self, record: ExecutionRecord) -> None:
        """Queue the record (microseconds; the work happens on the recorder's thread)."""
        if record.task not in FORWARD_TASKS or self._stopping:
            return
        with self._changed:
            self._received += 1
        self._queue.put((record, time.time()))

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything recorded so far is in the store.

        Raises
        ------
        StoreUnavailableError
            The store is still unavailable after ``timeout`` seconds; the states wait
            in the spool and are sent when it is back.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            target = self._received
            self._next_attempt = 0.0  # retry now rather than after the backoff
            while not (self._handled >= target and self._waiting == 0):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise StoreUnavailableError(
                        f"{self._waiting} recorded states are still waiting in the spool "
                        f"{self.spool.path} for {self.store.location} (last error: "
                        f"{self._last_error}); they will be sent when the store is back"
                    )
                self._changed.wait(0.05 if left is None else min(left, 0.05))

    def stats(self) -> RecorderStats:
        """Counters of what has been received, encoded, delivered, spooled, skipped."""
        with self._changed:
            return RecorderStats(
                self._received,
                self._spooled,
                self._delivered,
                self._waiting,
                self._rejected,
                self._skipped,
                self._last_error,
            )

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush (up to ``timeout`` seconds), then stop the thread. What the store has
        not acknowledged stays in the spool for the next recorder on it."""
        if self._stopping:
            return
        try:
            self.flush(timeout)
        except StoreUnavailableError as err:
            logger.warning("%s", err)
        self._stop()

    def _at_exit(self) -> None:
        # the interpreter is going: spool what is queued, give the store a moment
        self.close(timeout=2.0)

    def _stop(self) -> None:
        self._stopping = True
        atexit.unregister(self._at_exit)
        self._thread.join()
        self.spool.close()

    # ------------------------------------------------------ recorder thread
    def _loop(self) -> None:
        while True:
            try:
                records = self._take()
                if records:
                    self._spool_states(records)
                self._deliver()
            except Exception:  # the thread must outlive any bug: states wait in the spool
                logger.exception("StateRecorder: unexpected error; retrying")
                time.sleep(self._max_backoff)
            if self._stopping and self._queue.empty():
                return

    def _take(self) -> list:
        wait = self._max_delay
        if self._waiting:
            wait = min(wait, max(self._next_attempt - time.monotonic(), 0.0))
        try:
            items = [self._queue.get(timeout=max(wait, 1e-3))]
        except queue.Empty:
            return []
        while len(items) < self._batch_size:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _spool_states(self, items: list) -> None:
        entries: list[EncodedState] = []
        skipped = 0
        for record, received_at in items:
            try:
                states = self._encode(record, received_at)
            except Exception as err:  # a circuit the simulator cannot redo: say so, go on
                self._warn_once(type(err).__name__, f"cannot record a state: {err}")
                states = []
            entries += states
            skipped += not states
        self.spool.append(entries)
        with self._changed:
            self._handled += len(items)
            self._skipped += skipped
            self._spooled += len(entries)
            self._waiting += len(entries)
            self._changed.notify_all()

    def _encode(self, record: ExecutionRecord, received_at: float) -> list[EncodedState]:
        tape = record.tape
        result = record.result[0] if record.task != "execute" else record.result
        rows = measured_distributions(tape, result) if record.shots else None
        kind, source = "probs", "measured"
        if rows is None:
            if record.backend in self.hardware_backends or record.cost > 0:
                self._warn_once(
                    "hardware",
                    f"hardware runs on {record.backend} are recorded only when the circuit "
                    "returns qml.probs(), qml.counts() or qml.sample() on every wire; "
                    "add one of them to record these runs",
                )
                return []
            rows, kind, source = final_states(tape), "pure", "simulated"
        n_qubits = int(np.log2(rows.shape[1]))
        try:
            self.store.check_width(kind, n_qubits)
        except StateEncodingError as err:
            self._warn_once(f"width{n_qubits}", str(err))
            return []
        except StoreUnavailableError:
            pass  # the limit is unknown while the store is down; a write checks it
        meta = {
            "circuit_hash": structure_hash(tape),
            "backend": record.backend,
            "shots": record.shots,
            "cost": float(record.cost),
            "seconds": float(record.seconds),
            "timestamp": received_at,
            "task": record.task,
            "source": source,
            "run": self.run_id,
            "tags": self.tags or None,
        }
        parameters = parameter_rows(tape)
        entries = []
        for b, row in enumerate(rows):
            values = parameters[b] if b < len(parameters) else np.zeros(0)
            if values.size <= _MAX_PARAMETERS_IN_METADATA:
                meta["parameters"] = json.dumps(values.tolist())
            meta["batch_index"] = b
            entries.append(self.store.encode(row, kind, meta))
        return entries

    def _deliver(self) -> None:
        while self._waiting and time.monotonic() >= self._next_attempt:
            batch = self.spool.pending(self._batch_size)
            if not batch:
                return
            try:
                self.store.write(batch)
            except StoreUnavailableError as err:
                self._failed(err)
                return
            except StoreError as err:  # refused for good: find and set aside the culprits
                self._reject(batch, err)
                continue
            except Exception as err:  # unexpected: keep the states, retry later
                self._failed(err)
                return
            self._acknowledge(batch)

    def _acknowledge(self, batch: list[EncodedState]) -> None:
        self.spool.ack([e.id for e in batch])
        if self._backoff:
            logger.info("state store %s is back; delivering spooled states", self.store.location)
        self._backoff = 0.0
        with self._changed:
            self._delivered += len(batch)
            self._waiting -= len(batch)
            self._changed.notify_all()

    def _failed(self, err: Exception) -> None:
        if not self._backoff:
            logger.warning(
                "state store %s unavailable (%s); states are kept in %s and retried",
                self.store.location,
                err,
                self.spool.path,
            )
        self._backoff = min(max(2 * self._backoff, 0.05), self._max_backoff)
        self._next_attempt = time.monotonic() + self._backoff
        with self._changed:
            self._last_error = f"{type(err).__name__}: {err}"
            self._changed.notify_all()

    def _reject(self, batch: list[EncodedState], err: StoreError) -> None:
        if len(batch) == 1:
            logger.error("state store refused state %s: %s", batch[0].id, err)
            self.spool.reject(batch[0], str(err))
            with self._changed:
                self._waiting -= 1
                self._rejected += 1
                self._last_error = f"{type(err).__name__}: {err}"
                self._changed.notify_all()
            return
        for entry in batch:  # one by one: the good ones go through
            try:
                self.store.write([entry])
            except StoreUnavailableError as down:
                self._failed(down)
                return
            except StoreError as single:
                self._reject([entry], single)
            else:
                self._acknowledge([entry])

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("StateRecorder: %s", message)
