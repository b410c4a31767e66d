"""Fan routed groups of circuits out over a Dask cluster.

Each group's :class:`~qstore_pl.router.execution.executors.GroupWork` is split into pieces of
consecutive tapes, one Dask task per piece (by default one per worker thread, piece
``i`` preferring thread ``i``), and the pieces' results are put back in order. A task
holds only the pickled work: tapes packed as one template and a parameter table, the
backend's spec and the task name. Workers build each backend device once and keep it
(:class:`~qstore_pl.router.execution.executors.BackendPool`).

Fault tolerance comes from Dask: the tasks of a worker that dies are rescheduled on
the others. A piece whose workers keep dying (``KilledWorker``) is resubmitted up to
``retries`` times. Every piece's result is taken from its own future exactly once, so
a retry never loses or duplicates a result.

Every wait is bounded. Connecting probes the address first (a service that is not a
Dask scheduler fails within ``timeout``). While a batch waits, the executor checks the
cluster every second: a piece pinned to a worker that is gone, and not running
elsewhere, is re-pinned to a live worker (Dask itself would leave it waiting for the
dead address forever once every worker has died); a cluster without workers for
``worker_timeout`` seconds, or a lost scheduler, ends the batch with a
:class:`~qstore_pl.exceptions.BackendExecutionError` that says so. A lost scheduler
closes the client quietly; the next batch connects again.

A cluster given by address is only connected to, never shut down. Without an address
(and without ``QSTORE_DASK_ADDRESS``) the executor starts a ``LocalCluster`` of its own
and closes it with the executor. (Dask is used directly rather than through
``pennylane.concurrency``'s ``DaskExec``, which in PennyLane 0.45 shuts a connected
cluster down on exit and cannot be bound to an address by the device.)
"""

from __future__ import annotations

import asyncio
import pickle
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from distributed import Client, Future, KilledWorker, LocalCluster
from distributed.comm import connect
from distributed.security import Security

from qstore_pl.exceptions import BackendExecutionError
from qstore_pl.router.execution.executors import BackendPool, GroupWork, run_work
from qstore_pl.support.progress import CircuitProgress

#: Backend devices of a worker process; workers serve many routers over their life.
_WORKER_POOL = BackendPool(max_size=32)
#: Seconds between checks of the cluster while a batch waits for its pieces.
_POLL_SECONDS = 1.0


def run_on_worker(payload: bytes) -> list:
    """The Dask task: run a pickled :class:`GroupWork` with this worker's devices.

    The work travels as bytes: the scheduler unpickles the arguments of the tasks it
    receives, and should not rebuild and re-pickle every tape on its way through.
    """
    return run_work(pickle.loads(payload), _WORKER_POOL)


class DaskExecutor:
    """Runs a router's groups as Dask tasks.

    Parameters
    ----------
    address : str, optional
        Scheduler address, e.g. ``"tcp://10.0.0.5:8786"``. ``None`` starts a local
        cluster owned by this executor.
    n_workers : int, optional
        Worker processes of the local cluster (default: Dask's choice for this machine).
    chunks_per_worker : int
        Pieces each group is split into per worker thread: more pieces balance uneven
        workers and lose less to a dead worker, fewer cost less overhead.
    retries : int
        Resubmissions of a piece after Dask gives up on it (``KilledWorker``).
    progress : bool
        Show a progress bar (circuits done / total, ETA) for each batch.
    timeout : float
        Seconds to wait for the scheduler when connecting.
    worker_timeout : float
        Seconds a batch waits while the cluster has no workers (e.g. for a nanny to
        restart killed ones) before it fails.
    """

    def __init__(
        self,
        address: str | None = None,
        n_workers: int | None = None,
        chunks_per_worker: int = 1,
        retries: int = 2,
        progress: bool = False,
        timeout: float = 10.0,
        worker_timeout: float = 60.0,
    ):
        self.owner = uuid.uuid4().hex
        self.address = address
        self.n_workers = n_workers
        self.chunks_per_worker = chunks_per_worker
        self.retries = retries
        self.progress = progress
        self.timeout = timeout
        self.worker_timeout = worker_timeout
        self.resubmitted = 0  # pieces resubmitted after KilledWorker, for reports
        self.repinned = 0  # pieces moved off workers that left the cluster
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._finalizer: weakref.finalize | None = None
        self._connect_lock = threading.Lock()
        # map() runs groups in threads so their Dask tasks overlap, but the router's
        # bookkeeping around them (callbacks, logs, trackers) is not thread-safe: a
        # thread holds this lock except while it waits for its tasks
        self._local = threading.Lock()
        self._holder = threading.local()
        self._progress: CircuitProgress | None = None

    def __repr__(self) -> str:
        where = self.address or f"own LocalCluster(n_workers={self.n_workers})"
        return f"DaskExecutor({where})"

    # --------------------------------------------------------------- cluster
    @property
    def client(self) -> Client:
        """The Dask client, connecting (or starting the local cluster) on first use."""
        with self._connect_lock:
            if self._client is not None and self._client.status in ("closing", "closed"):
                self.close()  # the scheduler went away since the last batch
            if self._client is None:
                self._client, self._cluster = self._connect()
                self._finalizer = weakref.finalize(self, _disconnect, self._client, self._cluster)
            return self._client

    def _connect(self) -> tuple[Client, LocalCluster | None]:
        if self.address is None:
            cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            )
            return _QuietClient(cluster, set_as_default=False), cluster
        fix = (
            "start it (`dask scheduler`) or fix config['executor']['address'] / QSTORE_DASK_ADDRESS"
        )
        try:
            identity = _probe_scheduler(self.address, self.timeout)
        except (OSError, TimeoutError, MemoryError, ValueError, TypeError) as err:
            # MemoryError, ValueError: another protocol's bytes read as a Dask frame
            reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise BackendExecutionError(
                f"cannot reach the Dask scheduler at {self.address!r} within "
                f"{self.timeout:g} s ({reason[:200]}); {fix}"
            ) from None
        if not (isinstance(identity, dict) and identity.get("type") == "Scheduler"):
            raise BackendExecutionError(
                f"{self.address!r} answers but is not a Dask scheduler; {fix}"
            )
        try:
            client = _QuietClient(self.address, timeout=self.timeout, set_as_default=False)
        except OSError as err:
            raise BackendExecutionError(
                f"cannot reach the Dask scheduler at {self.address!r} ({err}); {fix}"
            ) from err
        return client, None

    def close(self) -> None:
        """Disconnect; shut the cluster down only if this executor started it."""
        if self._finalizer is not None:
            self._finalizer()
        self._client = self._cluster = self._finalizer = None

    # -------------------------------------------------------------- executing
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        with self._tracking():
            if len(items) <= 1:
                return [fn(item) for item in items]

            def locked(item):
                with self._local:
                    self._holder.held = True
                    try:
                        return fn(item)
                    finally:
                        self._holder.held = False

            with ThreadPoolExecutor(max_workers=min(len(items), 32)) as threads:
                return list(threads.map(locked, items))

    def run(self, work: GroupWork) -> list:
        client = self.client
        slots = _slots(self._ask(client, "ncores"))
        if not slots:
            try:
                client.wait_for_workers(1, timeout=self.worker_timeout)
            except TimeoutError:
                raise BackendExecutionError(self._no_workers(client)) from None
            slots = _slots(self._ask(client, "ncores"))
        pieces = work.split(len(slots) * self.chunks_per_worker)
        homes = [slots[i % len(slots)] for i in range(len(pieces))]
        with self._tracking() as progress:
            progress.expect(work.circuits)
            with self._released():
                results = self._gather(client, pieces, homes, progress)
        return [value for piece in results for value in piece]

    def _gather(self, client: Client, pieces: list[GroupWork], homes: list[str], progress):
        """Each piece's result, in order, resubmitting pieces lost with their workers."""
        payloads = [pickle.dumps(piece) for piece in pieces]
        finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
        futures: dict[Future, int] = {}  # pending futures -> piece index
        pinned: dict[Future, str] = {}  # pending futures -> the worker they prefer

        def submit(i: int, home: str | None) -> None:
            where = {"workers": [home], "allow_other_workers": True} if home else {}
            future = client.submit(run_on_worker, payloads[i], pure=False, **where)
            futures[future] = i
            if home:
                pinned[future] = home
            future.add_done_callback(finished.put)

        results: list[list | None] = [None] * len(pieces)
        attempts = [0] * len(pieces)
        no_workers_since: float | None = None
        try:
            for i, home in enumerate(homes):
                submit(i, home)
            while futures:
                try:
                    future = finished.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    no_workers_since = self._watch(
                        client, futures, pinned, submit, no_workers_since
                    )
                    continue
                if future not in futures:  # a future replaced when its piece was re-pinned
                    continue
                i = futures.pop(future)
                pinned.pop(future, None)
                try:
                    results[i] = future.result()
                except KilledWorker as err:
                    attempts[i] += 1
                    if attempts[i] > self.retries:
                        raise BackendExecutionError(
                            f"a piece of {pieces[i].circuits} circuits was lost with its "
                            f"workers {attempts[i]} times ({err}); the cluster's workers keep "
                            "dying (out of memory?)"
                        ) from err
                    self.resubmitted += 1
                    submit(i, None)
                    continue
                progress.advance(pieces[i].circuits)
        except BaseException:
            for other in futures:
                other.cancel()
            raise
        return results

    def _watch(self, client: Client, futures, pinned, submit, no_workers_since):
        """Check the cluster while a batch waits: fail on a lost scheduler or a long
        absence of workers, re-pin pieces whose worker left. Returns since when the
        cluster has had no workers (``None``: it has some)."""
        if client.status != "running":
            raise BackendExecutionError(
                f"lost the connection to the Dask scheduler at {self.address!r} with "
                f"{len(futures)} pieces unfinished; check the cluster and run again"
            )
        workers = self._ask(client, "ncores")
        if not workers:
            now = time.monotonic()
            if no_workers_since is not None and now - no_workers_since > self.worker_timeout:
                raise BackendExecutionError(self._no_workers(client, len(futures)))
            return no_workers_since or now
        gone = [f for f, home in pinned.items() if home not in workers]
        if gone:
            # Dask keeps a task whose preferred worker died while no worker was alive
            # waiting for that address forever; move it unless it already runs elsewhere
            running = {key for keys in self._ask(client, "processing").values() for key in keys}
            slots = _slots(workers)
            for future in gone:
                if future.key in running or future.done():
                    continue
                i = futures.pop(future)
                del pinned[future]
                future.cancel()
                self.repinned += 1
                submit(i, slots[i % len(slots)])
        return None

    def _ask(self, client: Client, handler: str) -> dict:
        """A scheduler handler's answer (``ncores``: threads per worker, ``processing``:
        task keys per worker), within ``timeout`` seconds."""
        try:
            return client.sync(getattr(client.scheduler, handler), callback_timeout=self.timeout)
        except (TimeoutError, OSError) as err:
            raise BackendExecutionError(
                f"the Dask scheduler at {client.scheduler.address} did not answer within "
                f"{self.timeout:g} s ({type(err).__name__}); check the cluster and run again"
            ) from err

    def _no_workers(self, client: Client, unfinished: int | None = None) -> str:
        left = f" with {unfinished} pieces unfinished" if unfinished else ""
        return (
            f"the Dask cluster at {client.scheduler.address} has had no workers for "
            f"{self.worker_timeout:g} s{left}; start some (`dask worker <scheduler "
            "address>`) or raise config['executor']['worker_timeout']"
        )

    @contextmanager
    def _tracking(self) -> Iterator[CircuitProgress]:
        """The progress of the current batch; the outermost call owns it."""
        if self._progress is not None:
            yield self._progress
            return
        self._progress = CircuitProgress(enabled=self.progress)
        try:
            yield self._progress
        finally:
            self._progress.close()
            self._progress = None

    @contextmanager
    def _released(self) -> Iterator[None]:
        """Let other groups' bookkeeping run while this thread waits for Dask."""
        if not getattr(self._holder, "held", False):
            yield
            return
        self._local.release()
        try:
            yield
        finally:
            self._local.acquire()


def _slots(nthreads: dict[str, int]) -> list[str]:
    """A slot per worker thread, in a stable order: piece i of a group goes to slot i,
    so the pieces of a forward pass and of the derivative pass after it meet the same
    device."""
    return [w for w, n in sorted(nthreads.items()) for _ in range(n)]


def _probe_scheduler(address: str, timeout: float) -> dict:
    """The scheduler's identity, asked over a fresh connection within ``timeout``
    seconds (``Client`` itself can wait forever on a service that accepts the
    connection and never answers). Runs its own event loop in a thread, so it works
    from inside a running loop (notebooks)."""

    async def ask() -> dict:
        # the TLS settings a Client would use (dask config), for tls:// addresses
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["identity"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as err:  # handed to the caller's thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name="qstore-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)  # wait_for bounds it; the margin covers a busy machine
    if "error" in outcome:
        raise outcome["error"]
    if "identity" not in outcome:
        raise TimeoutError(f"no answer within {timeout:g} s")
    return outcome["identity"]


class _QuietClient(Client):
    """A client that closes, without reconnect attempts or error logs, when its
    scheduler goes away (e.g. the user's cluster closes before the router): the
    executor connects again on its next batch."""

    # distributed.Client has no public switch for its reconnect loop, so this overrides
    # the private coroutine it runs when the scheduler connection drops
    async def _reconnect(self):
        await self._close(fast=True)


def _disconnect(client: Client, cluster: LocalCluster | None) -> None:
    client.close()
    if cluster is not None:  # only a cluster this executor started
        cluster.close()
