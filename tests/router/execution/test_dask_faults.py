"""The Dask executor under cluster faults (issue 12 section 7, issue 16 section 7), on a
real LocalCluster over loopback with worker processes killed for real.

Every wait is bounded: batches run in a thread joined with a generous timeout, so a
regression fails instead of hanging the suite.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import numpy as np
import pennylane as qml
import pytest
from distributed import Client, LocalCluster

from qstore_pl.exceptions import BackendExecutionError
from qstore_pl.router.config import BackendConfig
from qstore_pl.router.execution.dask import DaskExecutor
from qstore_pl.router.execution.executors import BackendPool, GroupWork, run_work
from qstore_pl.router.registry.builtin import build_spec
from qstore_pl.support.progress import CircuitProgress

LIGHTNING = {"backends": ["lightning.qubit"], "calibration": "off"}


def _cluster(n_workers: int) -> LocalCluster:
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )


@pytest.fixture(scope="module")
def cluster():
    with _cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        client.run(_warm_up)  # so that the first batch's pieces start together
        yield cluster, client


def _warm_up() -> None:
    import pennylane_lightning.lightning_qubit  # noqa: F401

    import qstore_pl.router.execution.dask  # noqa: F401


def _scale(cluster: LocalCluster, client: Client, n_workers: int) -> list[str]:
    """Scale the cluster to ``n_workers`` and wait for it; the addresses it had."""
    before = sorted(client.nthreads())
    cluster.scale(n_workers)
    deadline = time.monotonic() + 120  # new worker processes import PennyLane
    while len(client.nthreads()) != n_workers and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(client.nthreads()) == n_workers
    return before


def _bounded(fn, seconds: float = 300.0):
    """``fn()`` in a thread; fails the test if it is still waiting after ``seconds``."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _tapes(n_wires: int, count: int, layers: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tapes = []
    for _ in range(count):
        ops = []
        for _ in range(layers):
            ops += [qml.RY(x, w) for w, x in enumerate(rng.uniform(0, np.pi, n_wires))]
            ops += [qml.CNOT([w, (w + 1) % n_wires]) for w in range(n_wires)]
        tapes.append(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(w)) for w in range(2)]))
    return tapes


def _router(cluster, wires: int, **options):
    executor = {"kind": "dask", "address": cluster.scheduler_address, **options}
    return qml.device(
        "qstore.router", wires=wires, router_config={**LIGHTNING, "executor": executor}
    )


def _assert_equal_to_serial(results, tapes, wires):
    serial = qml.execute(tapes, qml.device("qstore.router", wires=wires, router_config=LIGHTNING))
    assert len(results) == len(tapes)
    for got, want in zip(results, serial):
        # workers' simulators run single-threaded: reductions may differ in the last bit
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=1e-12)


# The tests run in file order and leave the cluster as the next one expects: two
# workers, then none (the no-workers test), then two again (the re-pinning test).


def test_both_workers_killed_at_once_the_batch_finishes_on_their_replacements(cluster):
    cluster, client = cluster
    _scale(cluster, client, 2)
    tapes = _tapes(16, 32, layers=6, seed=1)
    dev = _router(cluster, 16)
    pids = client.run(os.getpid)

    def executing(dask_worker):
        return [str(ts.key) for ts in dask_worker.state.executing]

    killed = []
    finished = threading.Event()

    def kill_both_when_busy():
        while not finished.is_set():
            busy = client.run(executing)
            if len(busy) == 2 and all(any("run_on_worker" in k for k in v) for v in busy.values()):
                for address in busy:  # both at once: no live worker to move the pieces to
                    os.kill(pids[address], signal.SIGKILL)
                killed.extend(busy)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_both_when_busy)
    killer.start()
    try:
        results = _bounded(lambda: qml.execute(tapes, dev))
    finally:
        finished.set()
        killer.join()
        dev.executor.close()
    assert len(killed) == 2, "the workers were not seen busy together"
    assert not set(killed) & set(client.nthreads()), "the nannies started new workers"
    _assert_equal_to_serial(results, tapes, 16)


def test_no_workers_left_mid_batch_is_a_clear_error_within_worker_timeout(cluster):
    cluster, client = cluster
    _scale(cluster, client, 2)
    _departed[:] = sorted(client.nthreads())
    tapes = _tapes(16, 32, layers=6, seed=2)
    dev = _router(cluster, 16, worker_timeout=2)

    def retire_when_busy():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(client.processing().values()):
                cluster.scale(0)
                return
            time.sleep(0.02)

    retirer = threading.Thread(target=retire_when_busy)
    retirer.start()
    try:
        with pytest.raises(BackendExecutionError, match="has had no workers for 2 s"):
            _bounded(lambda: qml.execute(tapes, dev), seconds=90)
        with pytest.raises(BackendExecutionError, match="worker_timeout"):  # a new batch too
            _bounded(lambda: qml.execute(tapes[:2], dev), seconds=90)
    finally:
        retirer.join()
        dev.executor.close()
    assert not client.nthreads()


#: Workers retired by the no-workers test, whose addresses the re-pinning test uses.
_departed: list[str] = []
#: Below the ephemeral port range, so no local worker is ever given it.
_NEVER_A_WORKER = "tcp://127.0.0.1:9"


def _pieces(n_wires: int, count: int, parts: int) -> list[GroupWork]:
    spec = build_spec(BackendConfig(name="lightning.qubit", type="lightning.qubit"))
    work = GroupWork("faults", spec, n_wires, None, "execute", _tapes(n_wires, count, 2))
    return work.split(parts)


def test_pieces_pinned_to_departed_workers_are_repinned(cluster):
    """Dask leaves a task whose preferred worker died while no worker was alive in
    ``no-worker`` for good; the executor moves such pieces to the new workers."""
    cluster, client = cluster
    departed = _scale(cluster, client, 0) or _departed
    assert len(departed) == 2
    executor = DaskExecutor(address=cluster.scheduler_address)
    pieces = _pieces(4, 6, parts=3)
    try:
        connected = executor.client
        progress = CircuitProgress(enabled=False)
        # A new worker may bind a departed worker's port and take its pieces as its own,
        # so the third piece prefers a worker that never existed and cannot come back.
        homes = [departed[0], departed[1], _NEVER_A_WORKER]
        gathering = threading.Thread(
            target=lambda: gathered.append(executor._gather(connected, pieces, homes, progress))
        )
        gathered: list = []
        gathering.start()
        time.sleep(1.5)  # the pieces are waiting for the departed addresses
        cluster.scale(2)
        gathering.join(180)
        assert not gathering.is_alive(), "the pinned pieces were never re-pinned"
    finally:
        executor.close()
    returned = set(client.nthreads()) & set(homes)
    assert executor.repinned == sum(home not in returned for home in homes) >= 1
    pool = BackendPool()
    expected = [run_work(piece, pool) for piece in pieces]
    assert [len(piece) for piece in gathered[0]] == [len(piece) for piece in expected]
    np.testing.assert_allclose(np.array(gathered[0]), np.array(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 400 Bad Request\r\n\r\n"])
def test_a_service_that_is_not_dask_fails_within_the_timeout(answer):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    dev = qml.device(
        "qstore.router",
        wires=1,
        router_config={**LIGHTNING, "executor": {"kind": "dask", "address": address, "timeout": 2}},
    )
    tape = qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.expval(qml.Z(0))])
    try:
        with pytest.raises(BackendExecutionError, match="Dask scheduler") as info:
            _bounded(lambda: qml.execute([tape], dev), seconds=60)
        assert address in str(info.value) and "QSTORE_DASK_ADDRESS" in str(info.value)
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_the_users_cluster_closing_first_closes_the_client_quietly():
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("distributed.client")
    logger.addHandler(handler)
    try:
        with _cluster(0) as user_cluster:
            executor = DaskExecutor(address=user_cluster.scheduler_address, timeout=2)
            client = executor.client
            assert client.status == "running"
        deadline = time.monotonic() + 30
        while client.status != "closed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.status == "closed"
        time.sleep(3)  # past the reconnect timeout, when the old client logged its error
        executor.close()
        with pytest.raises(BackendExecutionError, match="cannot reach the Dask scheduler"):
            _ = executor.client  # the next batch connects again, and says why it cannot
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "reconnect" in r.getMessage()], records
