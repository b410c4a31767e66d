"""Fan routed groups of circuits out over a Dask cluster.

Each group's :class:`~qstore_pl.devices.executors.GroupWork` is split into pieces of
consecutive tapes, one Dask task per piece (by default one per worker thread, piece
``i`` preferring thread ``i``), and the pieces' results are put back in order. A task
holds only the pickled work: tapes packed as one template and a parameter table, the
backend's spec and the task name. Workers build each backend device once and keep it
(:class:`~qstore_pl.devices.executors.BackendPool`).

Fault tolerance comes from Dask: the tasks of a worker that dies are rescheduled on
the others. A piece whose workers keep dying (``KilledWorker``) is resubmitted up to
``retries`` times. Every piece's result is taken from its own future exactly once, so
a retry never loses or duplicates a result.

A cluster given by address is only connected to, never shut down. Without an address
(and without ``QSTORE_DASK_ADDRESS``) the executor starts a ``LocalCluster`` of its own
and closes it with the executor. (Dask is used directly rather than through
``pennylane.concurrency``'s ``DaskExec``, which in PennyLane 0.45 shuts a connected
cluster down on exit and cannot be bound to an address by the device.)
"""

from __future__ import annotations

import pickle
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from distributed import Client, KilledWorker, LocalCluster, as_completed

from qstore_pl.devices.executors import BackendPool, GroupWork, run_work
from qstore_pl.exceptions import BackendExecutionError
from qstore_pl.progress import CircuitProgress

#: Backend devices of a worker process; workers serve many routers over their life.
_WORKER_POOL = BackendPool(max_size=32)


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
    """

    def __init__(
        self,
        address: str | None = None,
        n_workers: int | None = None,
        chunks_per_worker: int = 1,
        retries: int = 2,
        progress: bool = False,
        timeout: float = 10.0,
    ):
        self.owner = uuid.uuid4().hex
        self.address = address
        self.n_workers = n_workers
        self.chunks_per_worker = chunks_per_worker
        self.retries = retries
        self.progress = progress
        self.timeout = timeout
        self.resubmitted = 0  # pieces resubmitted after KilledWorker, for reports
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
            return Client(cluster, set_as_default=False), cluster
        try:
            client = Client(self.address, timeout=self.timeout, set_as_default=False)
        except OSError as err:
            raise BackendExecutionError(
                f"cannot reach the Dask scheduler at {self.address!r} ({err}); start it "
                "(`dask scheduler`) or fix config['executor']['address'] / "
                "QSTORE_DASK_ADDRESS"
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
        # a slot per worker thread; piece i of a group goes to slot i, so the pieces of
        # a forward pass and of the derivative pass after it meet the same device
        slots = [w for w, n in sorted(client.nthreads().items()) for _ in range(n)]
        if not slots:
            raise BackendExecutionError(
                f"the Dask cluster at {client.scheduler.address} has no workers; start "
                "some (`dask worker <scheduler address>`)"
            )
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
        futures = {
            client.submit(
                run_on_worker, payload, pure=False, workers=[home], allow_other_workers=True
            ): i
            for i, (payload, home) in enumerate(zip(payloads, homes))
        }
        results: list[list | None] = [None] * len(pieces)
        attempts = [0] * len(pieces)
        pending = as_completed(futures, loop=client.loop)
        for future in pending:
            i = futures.pop(future)
            try:
                results[i] = future.result()
            except KilledWorker as err:
                attempts[i] += 1
                if attempts[i] > self.retries:
                    for other in futures:
                        other.cancel()
                    raise BackendExecutionError(
                        f"a piece of {pieces[i].circuits} circuits was lost with its "
                        f"workers {attempts[i]} times ({err}); the cluster's workers keep "
                        "dying (out of memory?)"
                    ) from err
                self.resubmitted += 1
                retry = client.submit(run_on_worker, payloads[i], pure=False)
                futures[retry] = i
                pending.add(retry)
                continue
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
            progress.advance(pieces[i].circuits)
        return results

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


def _disconnect(client: Client, cluster: LocalCluster | None) -> None:
    client.close()
    if cluster is not None:  # only a cluster this executor started
        cluster.close()
