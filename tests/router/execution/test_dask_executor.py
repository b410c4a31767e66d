"""The router's Dask executor on a real LocalCluster (two worker processes, loopback).

Results must equal serial execution exactly, gradients must flow through the
fan-out, a worker killed mid-batch must cost a retry and never a lost or duplicated
result, and a cluster given by address must survive the router that used it.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pennylane as qml
import pytest
import torch
from distributed import Client, LocalCluster

import qstore_pl
from qstore_pl.router.execution.dask import DaskExecutor

LIGHTNING = {"backends": ["lightning.qubit"], "calibration": "off"}


@pytest.fixture(scope="module")
def cluster():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            # the simulators' thread counts as in this process (Dask sets 1 by default), so
            # that their floating-point reductions run in the same order as serial ones
            env={"OMP_NUM_THREADS": str(os.cpu_count())},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield cluster, client


@pytest.fixture
def fanned_router(cluster):
    """Makes routers on the cluster; their clients disconnect before it closes."""
    made = []

    def make(wires, **options):
        executor = {"kind": "dask", "address": cluster[0].scheduler_address, **options}
        config = {**LIGHTNING, "executor": executor}
        made.append(qml.device("qstore.router", wires=wires, router_config=config))
        return made[-1]

    yield make
    for dev in made:
        dev.executor.close()


def _layer_tapes(n_wires, count, layers=2, seed=0):
    """``count`` circuits of one structure plus a few of another (two groups)."""
    rng = np.random.default_rng(seed)
    tapes = []
    for k in range(count):
        ops = [qml.RX(x, w) for w, x in enumerate(rng.uniform(0, np.pi, n_wires))]
        for _ in range(layers):
            ops += [qml.RY(x, w) for w, x in enumerate(rng.uniform(0, np.pi, n_wires))]
            ops += [qml.CNOT([w, (w + 1) % n_wires]) for w in range(n_wires)]
        measurements = [qml.expval(qml.Z(w)) for w in range(n_wires)]
        if k % 4 == 3:  # another structure
            measurements = [qml.probs(wires=[0, 1])]
        tapes.append(qml.tape.QuantumScript(ops, measurements))
    return tapes


def _pool_sizes(client):
    def size():
        from qstore_pl.router.execution import dask as dask_executor

        return len(dask_executor._WORKER_POOL)

    return client.run(size)


def test_results_identical_to_serial_and_spread_over_both_workers(fanned_router, cluster):
    _, client = cluster
    tapes = _layer_tapes(6, 16)
    serial = qml.execute(tapes, qml.device("qstore.router", wires=6, router_config=LIGHTNING))
    dev = fanned_router(6)
    fanned = qml.execute(tapes, dev)
    assert len(fanned) == len(serial) == 16
    for got, want in zip(fanned, serial):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # both workers ran pieces and kept their devices
    assert all(n >= 1 for n in _pool_sizes(client).values())
    assert dev.routing_report().recent[-1].backend == "lightning.qubit"


def test_workers_build_each_device_once(fanned_router, cluster):
    _, client = cluster
    dev = fanned_router(5)
    tapes = _layer_tapes(5, 8, seed=1)

    def device_ids():
        from qstore_pl.router.execution import dask as dask_executor

        return sorted(id(b.device) for b in dask_executor._WORKER_POOL._backends.values())

    qml.execute(tapes, dev)
    before = client.run(device_ids)
    qml.execute(_layer_tapes(5, 8, seed=2), dev)
    assert client.run(device_ids) == before


def test_gradients_through_the_fan_out_match_serial_and_default_qubit(fanned_router):
    weights = np.random.default_rng(3).uniform(0, np.pi, (2, 3))
    inputs = np.random.default_rng(4).uniform(0, np.pi, (6, 3))

    def loss_grad(dev, diff_method):
        w = torch.tensor(weights, requires_grad=True)
        tapes = []
        for x in inputs:
            ops = [qml.RX(float(v), i) for i, v in enumerate(x)]
            for layer in range(2):
                ops += [qml.RY(w[layer, i], i) for i in range(3)]
                ops += [qml.CNOT([0, 1]), qml.CNOT([1, 2])]
            tapes.append(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(2))]))
        vjp = diff_method == "adjoint"
        results = qml.execute(tapes, dev, diff_method=diff_method, device_vjp=vjp)
        loss = sum(r**2 for r in results)
        loss.backward()
        return loss.detach().numpy(), w.grad.numpy()

    fanned_dev = fanned_router(3)
    serial_dev = qml.device("qstore.router", wires=3, router_config=LIGHTNING)
    reference = loss_grad(qml.device("default.qubit", wires=3), "backprop")
    for method in ("adjoint", "parameter-shift"):
        fanned = loss_grad(fanned_dev, method)
        serial = loss_grad(serial_dev, method)
        np.testing.assert_array_equal(fanned[1], serial[1])
        np.testing.assert_allclose(fanned[0], reference[0], atol=1e-10)
        np.testing.assert_allclose(fanned[1], reference[1], atol=1e-10)


def _set_allowed_failures(client, value):
    def assign(dask_scheduler, value):
        previous, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, value
        return previous

    return client.run_on_scheduler(assign, value=value)


@pytest.mark.parametrize("retried_by", ["dask", "executor"])
def test_worker_killed_mid_batch_costs_a_retry_not_a_result(fanned_router, cluster, retried_by):
    """Dask reschedules a dead worker's task; where the scheduler gives up at once
    (allowed-failures 0, the KilledWorker path), the executor resubmits the piece."""
    _, client = cluster
    # 16 qubits, deep enough that each piece runs for a good fraction of a second
    tapes = _layer_tapes(16, 48, layers=6, seed=5)
    dev = fanned_router(16)
    pids = client.run(os.getpid)
    allowed = _set_allowed_failures(client, 0) if retried_by == "executor" else None

    def executing(dask_worker):
        return [ts.key for ts in dask_worker.state.executing]

    killed: dict = {}

    def kill_one_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for address, keys in client.run(executing).items():
                if keys and "run_on_worker" in str(keys[0]):
                    os.kill(pids[address], signal.SIGKILL)
                    killed.update(address=address, key=keys[0])
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    try:
        fanned = qml.execute(tapes, dev)
    finally:
        killer.join()
        if allowed is not None:
            _set_allowed_failures(client, allowed)
    assert killed, "no task was seen executing"

    serial = qml.execute(tapes, qml.device("qstore.router", wires=16, router_config=LIGHTNING))
    assert len(fanned) == len(tapes)
    for got, want in zip(fanned, serial):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

    def transitions(dask_scheduler, key):
        return [entry[2] for entry in dask_scheduler.story(key) if len(entry) > 2]

    story = client.run_on_scheduler(transitions, key=killed["key"])
    sent_again = dev.executor.resubmitted + dev.executor.repinned
    if retried_by == "dask":  # the scheduler ran the killed piece again, elsewhere
        assert story.count("processing") >= 2 and dev.executor.resubmitted == 0
    elif "erred" in story:  # the scheduler gave up on the piece (KilledWorker): the executor
        # resent it, on KilledWorker or earlier, when its watch saw the piece's worker gone
        assert sent_again >= 1
    else:  # the piece had finished just before the kill: its result was lost with the
        # worker, which the scheduler recomputes whatever allowed-failures says
        assert story.count("processing") >= 2 or sent_again >= 1
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_a_cluster_given_by_address_survives_the_router(fanned_router, cluster):
    _, client = cluster
    dev = fanned_router(2)
    qml.execute(_layer_tapes(2, 4), dev)
    dev.executor.close()
    del dev
    assert len(client.nthreads()) == 2
    assert client.submit(sum, [1, 2]).result() == 3


def test_executor_closes_the_cluster_it_started():
    executor = DaskExecutor(n_workers=1)
    cluster_client = executor.client
    cluster = executor._cluster
    assert cluster is not None and cluster.status.name == "running"
    executor.close()
    assert cluster.status.name == "closed"
    assert cluster_client.status == "closed"


def test_progress_bar_counts_circuits(fanned_router, capsys):
    dev = fanned_router(3, progress=True)
    qml.execute(_layer_tapes(3, 8), dev)
    err = capsys.readouterr().err
    assert "8/8" in err and "circuit" in err


def test_unreachable_scheduler_is_reported_with_the_fix():
    dev = qml.device(
        "qstore.router",
        wires=1,
        router_config={
            **LIGHTNING,
            "executor": {"kind": "dask", "address": "tcp://127.0.0.1:9", "timeout": 1},
        },
    )
    tape = qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.expval(qml.Z(0))])
    with pytest.raises(qstore_pl.BackendExecutionError, match="cannot reach the Dask scheduler"):
        qml.execute([tape], dev)
