"""``StateRecorder``: a device callback that records the states a model produces.

What is recorded for an executed circuit (one state per broadcast element):

* a finite-shot run whose circuit returns ``qml.probs()``, ``qml.counts()`` or
  ``qml.sample()`` on every wire: the **measured distribution** (kind ``"probs"``,
  ``source="measured"``);
* any other run on a simulator: the circuit's **final pure state** (kind ``"pure"``,
  ``source="simulated"``). Where the backend kept the states it computed
  (``qstore.batched`` keeps its forward states) the router hands them over with the
  record and they are stored as they are; otherwise the circuit is spooled and the
  recorder's thread simulates it with PennyLane's ``default.qubit`` functions, which
  for a simulator run is the state the backend computed (up to float rounding);
* a hardware run without such a measurement: nothing can be recorded faithfully
  (re-simulating would store an ideal state the hardware never produced); it is
  counted in :attr:`RecorderStats.skipped` with a warning naming the fix. A run
  counts as hardware when its backend is in ``hardware_backends`` or it was
  charged (``cost > 0``).

Durability: :meth:`StateRecorder.on_execution` writes the record to a durable
:class:`~qstore_pl.db.spool.Spool` (one transaction per call, on the calling thread)
before it returns, so a killed process loses at most the call in flight (what an
operating-system crash may lose depends on ``sync``, see below). It never talks to
the store, and it writes the call as it came: the pickled circuit and the backend's
amplitudes as one blob, a single row; phase fixing, encoding, ids and metadata are the
delivery's work (they cost more than the write itself).
Delivery (encoding, then store writes in batches, removing from the spool what the
store acknowledged; exponential backoff while the store is down) runs on a thread of
the recorder or, for an embedded store on disk, in a process of its own (see
:mod:`qstore_pl.db.delivery`: Qdrant local mode is Python, and a thread writing into
it competes with training for the interpreter lock). A later recorder on the same
spool replays what a killed process left.
State ids are fixed when spooled (a call's derive from the call's id) and store
writes overwrite by id, so nothing is stored twice. See :mod:`qstore_pl.db.spool`
for the ``sync`` (fsync) policy and what each setting survives.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import threading
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from qstore_pl.callbacks import DeviceCallback, ExecutionRecord
from qstore_pl.db import delivery as delivery_process
from qstore_pl.db import encoding
from qstore_pl.db.call_facts import CallFacts
from qstore_pl.db.delivery import DeliveryProcess
from qstore_pl.db.errors import StateEncodingError, StoreError, StoreUnavailableError
from qstore_pl.db.spool import CircuitEntry, Spool, SpooledCircuit, default_spool_path
from qstore_pl.db.store import EncodedState, StateStore, check_metadata

logger = logging.getLogger(__name__)

FORWARD_TASKS = ("execute", "execute+jacobian", "execute+vjp")
DELIVERY_MODES = ("auto", "process", "thread")
#: Calls a delivery round encodes at most, and states: a round ends with an fsync of
#: the store and a checkpoint of the spool, which cost about as much as writing a
#: few hundred states, so a replay runs in rounds of thousands.
_CIRCUITS_PER_ROUND = 4096
_STATES_PER_ROUND = 4096


@dataclass(frozen=True)
class RecorderStats:
    """What a recorder has done so far.

    Attributes
    ----------
    received : int
        Executions handed to :meth:`StateRecorder.on_execution`.
    spooled : int
        States written to the spool by this recorder (a spooled circuit counts
        with its states).
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
    sync : {"normal", "full"}
        The spool's commit policy: with ``"normal"`` a call survives a killed
        process when ``on_execution`` returns and an operating-system crash once
        delivered (after :meth:`flush`); ``"full"`` survives both on return, at the
        cost of an fsync per call (see :mod:`qstore_pl.db.spool`).
    delivery : {"auto", "process", "thread"}
        Where states are encoded and written to the store: ``"process"``, a child
        process that owns the store while the recorder is open (the store's calls in
        this process go to it; an embedded store on disk only); ``"thread"``, a thread
        of this process; ``"auto"`` (default), a process for an embedded store on
        disk, else a thread.

    Examples
    --------
    >>> store = open_store(path=None)
    >>> recorder = StateRecorder(store)
    >>> dev = qml.device("qstore.router", wires=4, callbacks=[recorder])
    >>> ...  # train
    >>> recorder.flush()  # everything recorded so far is in the store
    """

    wants_states = True

    def __init__(
        self,
        store: StateStore,
        *,
        spool: str | os.PathLike[str] | None = None,
        tags: Sequence[str] = (),
        hardware_backends: Collection[str] = (),
        batch_size: int = 512,
        max_delay: float = 0.25,
        max_backoff: float = 5.0,
        sync: str = "normal",
        delivery: str = "auto",
    ):
        process = _delivers_in_a_process(store, delivery)
        self.store = store
        self.spool = Spool(spool or default_spool_path(store.location), sync=sync)
        self.tags = [str(t) for t in tags]
        self.hardware_backends = frozenset(hardware_backends)
        self.run_id = uuid.uuid4().hex[:12]
        self._batch_size = batch_size
        self._max_delay = max_delay
        self._max_backoff = max_backoff
        self._changed = threading.Condition()
        self._received = self._spooled = self._delivered = self._skipped = 0
        self._waiting, self._rejected = self.spool.counts()  # a crashed run's leftovers
        self._oldest = time.monotonic()  # when the oldest unsent state was spooled
        self._urgent = bool(self._waiting)  # leftovers go out at once
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._last_error: str | None = None
        self._widths: set[tuple[str, int]] = set()  # (kind, qubits) the store can hold
        self._warned: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._process: DeliveryProcess | None = None
        self._delivered_before = self.spool.delivered()
        if process:
            options = {
                "spool": str(self.spool.path),
                "sync": sync,
                "batch_size": batch_size,
                "max_delay": max_delay,
                "max_backoff": max_backoff,
            }
            self._process = delivery_process.take_over(store, options)
        else:
            self._thread = threading.Thread(
                target=self._loop, name="qstore-state-recorder", daemon=True
            )
            self._thread.start()
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        where = "thread" if self._process is None else "process"
        return (
            f"StateRecorder(store={self.store.location}, spool={self.spool.path}, delivery={where})"
        )

    @property
    def delivery_pid(self) -> int | None:
        """The process id of the delivery process, ``None`` when delivering on a thread."""
        return None if self._process is None else self._process.pid

    # ------------------------------------------------------- training thread
    def on_execution(self, record: ExecutionRecord) -> None:
        """Write the record's states (or its circuit) to the spool, durably, before
        returning; the store is written by the recorder's thread."""
        if record.task not in FORWARD_TASKS:
            return
        if self._stopping:
            self._warn_once("closed", "the recorder is closed; executions are not recorded")
            return
        received_at = time.time()
        entries, circuits = self._capture(record, received_at)
        states = len(entries) + sum(c.states for c in circuits)
        with self._changed:  # counted with the append: the forwarder recounts under it
            self._received += 1
            if not states:
                self._skipped += 1
                return
            self.spool.append(entries, circuits)
            before = self._waiting
            if not before:
                self._oldest = time.monotonic()
            self._spooled += states
            self._waiting += states
            # wake the delivery thread only when its next round moves closer: a wake-up
            # per call hands it the interpreter lock for nothing while training runs
            if not before or before < self._batch_size <= self._waiting:
                self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything recorded so far is in the store.

        Raises
        ------
        StoreUnavailableError
            The store is still unavailable after ``timeout`` seconds; the states wait
            in the spool and are sent when it is back.
        """
        if self._process is not None:
            self._process.call("flush", timeout, timeout=timeout)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._urgent = True
            self._next_attempt = 0.0  # retry now rather than after the backoff
            self._changed.notify_all()
            while self._waiting:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise StoreUnavailableError(
                        f"{self._waiting} recorded states are still waiting in the spool "
                        f"{self.spool.path} for {self.store.location} (last error: "
                        f"{self._last_error}); they will be sent when the store is back"
                    )
                self._changed.wait(0.05 if left is None else min(left, 0.05))

    def stats(self) -> RecorderStats:
        """Counters of what has been received, spooled, delivered, rejected, skipped."""
        if self._process is not None:
            return self._process_stats(self._process)
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

    def _process_stats(self, process: DeliveryProcess) -> RecorderStats:
        """Stats with a delivery process: the spool's counts and what the child saw
        (its last error, circuits it could not simulate) if it answers within a second."""
        waiting, rejected = self.spool.counts()
        try:
            child = process.call("stats", timeout=1.0)
            skipped, last_error = child.skipped, child.last_error
        except StoreUnavailableError as err:  # starting, or restarting
            skipped, last_error = 0, str(err)
        with self._changed:
            return RecorderStats(
                self._received,
                self._spooled,
                self.spool.delivered() - self._delivered_before,
                waiting,
                rejected,
                self._skipped + skipped,
                last_error,
            )

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush (up to ``timeout`` seconds), then stop the thread or the delivery
        process (which hands the store back to this process). What the store has not
        acknowledged stays in the spool for the next recorder on it."""
        if self._stopping:
            return
        try:
            self.flush(timeout)
        except StoreUnavailableError as err:
            logger.warning("%s", err)
        self._stop()

    def _at_exit(self) -> None:
        # everything is spooled already; give the store a moment to take it
        self.close(timeout=2.0)

    def _stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        atexit.unregister(self._at_exit)
        if self._thread is not None:
            self._thread.join()
        if self._process is not None:
            delivery_process.hand_back(self.store, self._process)
        self.spool.close()

    def _capture(
        self, record: ExecutionRecord, received_at: float
    ) -> tuple[list[EncodedState], list[CircuitEntry]]:
        """What to spool for a record: encoded distributions, or the call (the backend's
        amplitudes with the circuit's facts, else the pickled circuit) for the delivery
        to encode."""
        from qstore_pl.db import circuits  # PennyLane: the training side only

        tape = record.tape
        result = record.result[0] if record.task != "execute" else record.result
        rows = circuits.measured_distributions(tape, result) if record.shots else None
        kind, source = "probs", "measured"
        if rows is None:
            if record.backend in self.hardware_backends or record.cost > 0:
                self._warn_once(
                    "hardware",
                    f"hardware runs on {record.backend} are recorded only when the circuit "
                    "returns qml.probs(), qml.counts() or qml.sample() on every wire; "
                    "add one of them to record these runs",
                )
                return [], []
            kind, source = "pure", "simulated"
        meta = self._metadata(record, received_at, source)
        if kind == "pure":
            amplitudes = _rows(record.states)
            facts = None if amplitudes is None else circuits.facts_with_states(tape, amplitudes)
            if amplitudes is not None and facts is not None:
                entry = CircuitEntry(
                    str(uuid.uuid4()), len(amplitudes), b"", meta, amplitudes, facts
                )
                return [], [entry]
            try:  # the backend's states are over other wires, or there are none: simulate
                blob = pickle.dumps(tape, protocol=5)
            except Exception:  # a tape that cannot be spooled: encode its states here
                rows = circuits.final_states(tape)
            else:
                count = tape.batch_size or 1
                return [], [CircuitEntry(str(uuid.uuid4()), count, blob, meta)]
        try:
            return self._encode(rows, kind, meta, circuits.facts_of(tape), str(uuid.uuid4())), []
        except StateEncodingError as err:
            self._warn_once(type(err).__name__, f"cannot record a state: {err}")
            return [], []

    def _metadata(self, record: ExecutionRecord, received_at: float, source: str) -> dict:
        return {
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

    def _encode(
        self, rows, kind: str, meta: dict, facts: CallFacts, call_id: str
    ) -> list[EncodedState]:
        """One entry per row; ids derive from the call's id, so re-encoding a spooled
        call after a crash gives the same ids. The circuit's hash is added here
        (spools of older versions carry it already)."""
        vectors, n_qubits = encoding.encode_rows(rows, kind)
        namespace = encoding.namespace_for(kind, n_qubits)
        base = check_metadata(meta)
        base.update(kind=kind, n_qubits=n_qubits)
        base.setdefault("circuit_hash", facts.circuit_hash)
        parameters = facts.parameter_texts()
        call = uuid.UUID(call_id)
        entries = []
        for b, vector in enumerate(vectors):
            row_meta = dict(base, batch_index=b)
            if b < len(parameters):
                row_meta["parameters"] = parameters[b]
            entries.append(EncodedState(str(uuid.uuid5(call, str(b))), namespace, vector, row_meta))
        return entries

    # ------------------------------------------------------ recorder thread
    def _loop(self) -> None:
        while True:
            with self._changed:
                while True:
                    if self._stopping:
                        return
                    delay = self._delay()
                    if delay is not None and delay <= 0:
                        break
                    self._changed.wait(delay)
            try:
                self._deliver_calls()
                self._deliver()
                self.spool.checkpoint()
            except Exception:  # the thread must outlive any bug: states wait in the spool
                logger.exception("StateRecorder: unexpected error; retrying")
                time.sleep(self._max_backoff)
            self.reload_counts(after_round=True)

    def reload_counts(self, after_round: bool = False) -> None:
        """Read the waiting and rejected counts from the spool, the truth when another
        process appends to it (a delivery process calls this to see the training
        process's calls); ``after_round``: the thread has just sent what was there."""
        with self._changed:
            waiting, self._rejected = self.spool.counts()
            if after_round or not self._waiting:
                self._oldest = time.monotonic()  # the oldest unsent state's clock starts
            self._waiting = waiting
            self._urgent = self._urgent and bool(waiting)
            self._changed.notify_all()

    def _delay(self) -> float | None:
        """Seconds until the next forwarding round; ``None``: until something arrives."""
        if not self._waiting:
            return None
        now = time.monotonic()
        ready = self._next_attempt
        if not self._urgent and self._waiting < self._batch_size:
            ready = max(ready, self._oldest + self._max_delay)
        return ready - now

    def _deliver_calls(self) -> None:
        """Encode a round of spooled calls and write their states straight to the
        store; the calls leave the spool in one transaction once the store has them
        all (and has fsynced them). A crash before that sends them again: same ids,
        overwritten. Calls whose states the store may refuse (a width it does not
        hold, a refused write) become ``pending`` states instead, which
        :meth:`_deliver` sends one by one where needed and sets aside."""
        if time.monotonic() < self._next_attempt:
            return  # the store is down: the calls wait as they are
        calls = self.spool.circuits(_CIRCUITS_PER_ROUND, _STATES_PER_ROUND)
        if not calls:
            return
        encoded = [(c.id, self._states_of(c)) for c in calls]
        entries = [entry for _, states in encoded for entry in states]
        widths = {(e.metadata["kind"], int(e.metadata["n_qubits"])) for e in entries}
        for width in widths - self._widths:
            try:
                self.store.check_width(*width)
            except StateEncodingError:  # pending sets them aside, with the reason
                self.spool.expand(encoded)
                return
            except StoreError as err:  # the width limit is unknown while the store is down
                self._failed(err)
                return
            self._widths.add(width)
        failure: Exception | None = None
        try:
            for start in range(0, len(entries), self._batch_size):
                self.store.write(entries[start : start + self._batch_size])
        except StoreUnavailableError as err:
            failure = err
        except StoreError:  # refused for good: pending finds and sets aside the culprits
            pass
        except Exception as err:  # unexpected: keep the states, retry later
            failure = err
        else:
            if entries:  # on disk before the spool forgets them (see _acknowledge)
                self.store.sync()
            self.spool.forget_calls([call_id for call_id, _ in encoded], len(entries))
            self._stored(len(entries))
            return
        # keep the encoding: pending retries these states (those stored already are
        # overwritten by id) and sets aside what the store refuses
        self.spool.expand(encoded)
        if failure is not None:
            self._failed(failure)

    def _states_of(self, circuit: SpooledCircuit) -> list[EncodedState]:
        """The encoded states of a spooled call: from the backend's amplitudes and the
        call's facts (no PennyLane), else from its circuit (simulated, or the
        amplitudes an older version spooled with it)."""
        try:
            if circuit.facts is not None and circuit.amplitudes is not None:
                rows, facts = _unit_rows(circuit.amplitudes), circuit.facts
            else:
                from qstore_pl.db import circuits  # PennyLane: circuits to simulate only

                tape, rows = circuit.tape, None
                if circuit.amplitudes is not None and circuit.amplitudes.shape == _state_shape(
                    tape
                ):
                    rows = _unit_rows(circuit.amplitudes)
                if rows is None:
                    rows = circuits.final_states(tape)
                facts = circuits.facts_of(tape)
            return self._encode(rows, "pure", circuit.metadata, facts, circuit.id)
        except Exception as err:  # a circuit the simulator cannot redo: say so, go on
            self._warn_once(type(err).__name__, f"cannot record a state: {err}")
            with self._changed:
                self._skipped += 1
            return []

    def _deliver(self) -> None:
        """Send the spool in order, in store writes of ``batch_size`` states; fsync the
        store and acknowledge by position (see :class:`Spool`) once per round of up to
        :data:`_STATES_PER_ROUND` states, and before giving up on a failure."""
        while time.monotonic() >= self._next_attempt:
            batch = self.spool.pending(_STATES_PER_ROUND)
            if not batch:
                return
            try:
                fitting = self._fitting(batch)
            except StoreError as err:  # the width limit is unknown while the store is down
                self._failed(err)
                return
            sent = 0  # states of ``fitting`` the store has taken, in order
            for start in range(0, len(fitting), self._batch_size):
                chunk = fitting[start : start + self._batch_size]
                try:
                    self.store.write([entry for _, entry in chunk])
                except Exception as err:
                    self._acknowledge(fitting[sent - 1][0] if sent else None, sent)
                    if isinstance(err, StoreError) and not isinstance(err, StoreUnavailableError):
                        self._one_by_one(chunk)  # refused for good: set aside the culprits
                        break
                    self._failed(err)  # unavailable or unexpected: keep them, retry later
                    return
                sent += len(chunk)
            else:
                self._acknowledge(batch[-1][0], sent)

    def _fitting(self, batch: list) -> list:
        """The ``(seq, entry)`` pairs of a width the store holds (asked once per width);
        the others are set aside in the spool's ``rejected`` table with the reason."""
        keep = []
        for seq, entry in batch:
            width = (entry.metadata["kind"], int(entry.metadata["n_qubits"]))
            if width not in self._widths:
                try:
                    self.store.check_width(*width)
                except StateEncodingError as err:
                    self._warn_once(f"width{width}", str(err))
                    self._reject(seq, entry, err)
                    continue
                self._widths.add(width)
            keep.append((seq, entry))
        return keep

    def _one_by_one(self, pairs: list) -> None:
        """Send a refused batch one state at a time, in order: the good ones go
        through, the refused ones are set aside."""
        for seq, entry in pairs:
            try:
                self.store.write([entry])
            except StoreUnavailableError as down:
                self._failed(down)
                return
            except StoreError as err:
                self._reject(seq, entry, err)
            else:
                self._acknowledge(seq, 1)

    def _acknowledge(self, seq: int | None, count: int) -> None:
        """Forget the states up to ``seq`` (``None``: none), ``count`` of them stored."""
        if seq is None:
            return
        # the store's writes reach the disk before the spool forgets them: an
        # operating-system crash in between loses nothing
        if count:
            self.store.sync()
        self.spool.ack_through(seq, count)
        self._stored(count)

    def _stored(self, count: int) -> None:
        """Count states the store has acknowledged (and the spool has forgotten)."""
        if self._backoff:
            logger.info("state store %s is back; delivering spooled states", self.store.location)
        self._backoff = 0.0
        with self._changed:
            self._delivered += count
            self._waiting -= count
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

    def _reject(self, seq: int, entry: EncodedState, err: Exception) -> None:
        logger.error("state store refused state %s: %s", entry.id, err)
        self.spool.reject(seq, entry, str(err))
        with self._changed:
            self._waiting -= 1
            self._rejected += 1
            self._last_error = f"{type(err).__name__}: {err}"
            self._changed.notify_all()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("StateRecorder: %s", message)


def _delivers_in_a_process(store: StateStore, delivery: str) -> bool:
    """Whether a recorder with this ``delivery`` setting delivers through a process."""
    if delivery not in DELIVERY_MODES:
        raise ValueError(f"delivery must be one of {DELIVERY_MODES}; got {delivery!r}")
    on_disk = getattr(store.backend, "local_path", None) is not None
    if delivery == "process" and not on_disk:
        raise ValueError(
            f"delivery='process' needs an embedded store on disk (open_store(path=...)); "
            f"{store.location} is not one. Use delivery='thread' (or 'auto')."
        )
    return delivery == "process" or (delivery == "auto" and on_disk)


def _state_shape(tape) -> tuple[int, int]:
    """The shape of a tape's recorded states: ``(batch, 2**n)`` over :func:`state_wires`.

    A backend's states of another shape are over the tape's own wires, not those
    (the delivery simulates instead)."""
    from qstore_pl.db.circuits import state_wires

    return (tape.batch_size or 1, 2 ** len(state_wires(tape)))


def _unit_rows(amplitudes: np.ndarray) -> np.ndarray:
    """A backend's states as unit rows (its own rounding, complex64, is not a user error;
    NaN rows: encoding says so)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return amplitudes / np.linalg.norm(amplitudes, axis=1, keepdims=True)


def _rows(states) -> np.ndarray | None:
    """A backend's states as a ``(batch, amplitudes)`` array (a view where it can be)."""
    return None if states is None else np.asarray(states).reshape(len(states), -1)
