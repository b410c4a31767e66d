"""The thread policy (qstore_pl.support.threads): its decisions for given cores, loads, shares
and overrides; the environment variables; the wait policy set when qstore_pl is
imported; and that the thread counts it picks leave the numbers unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import numba
import numpy as np
import pennylane as qml
import pytest

from qstore_pl.support import threads
from qstore_pl.support.threads import PARALLEL_MIN_AMPLITUDES, ThreadBudget, decide_threads

BIG = 1 << 20  # amplitudes of a call that runs in parallel when cores are free


@pytest.fixture
def fresh_budget(monkeypatch):
    """A budget recomputed from the environment the test sets, on a 2-core machine
    with a given number of busy processes."""
    for name in ("QSTORE_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)

    def budget(busy: int = 0) -> ThreadBudget:
        monkeypatch.setattr(threads, "_load", threads._Load())
        monkeypatch.setattr(threads, "_runnable_tasks", lambda: busy + 1)  # + the reader
        monkeypatch.setattr(threads, "_own_runnable_threads", lambda: 1)
        return threads.thread_budget(refresh=True)

    yield budget
    threads.thread_budget(refresh=True)  # forget the test's environment


@pytest.mark.parametrize(
    "budget, amplitudes, expected",
    [
        (ThreadBudget(cores=2, busy=0, share=1), BIG, 2),  # idle: every core
        (ThreadBudget(cores=2, busy=1, share=1), BIG, 1),  # one busy process
        (ThreadBudget(cores=2, busy=2, share=1), BIG, 1),  # never fewer than one
        (ThreadBudget(cores=16, busy=5, share=1), BIG, 11),  # the free cores
        (ThreadBudget(cores=2, busy=0, share=2), BIG, 1),  # two DDP ranks on 2 cores
        (ThreadBudget(cores=16, busy=0, share=4), BIG, 4),  # 4 Dask task slots
        (ThreadBudget(cores=16, busy=0, share=1, cap=3), BIG, 3),  # OMP_NUM_THREADS
        (ThreadBudget(cores=16, busy=0, share=1), PARALLEL_MIN_AMPLITUDES - 1, 1),  # small
        (ThreadBudget(cores=2, busy=2, share=2, override=6), BIG, 6),  # QSTORE_THREADS
        (ThreadBudget(cores=16, busy=0, share=1, override=6), 16 * 32, 1),  # small stays 1
    ],
)
def test_decisions(budget, amplitudes, expected):
    assert decide_threads(amplitudes, budget) == expected


def test_w1_batches_below_ten_qubits_run_on_one_thread():
    idle = ThreadBudget(cores=64, busy=0, share=1)
    assert decide_threads(32 << 8, idle) == 1  # W1 at 8 qubits, batch 32
    assert decide_threads(32 << 12, idle) == 64  # at 12


def test_environment_override_is_honoured(fresh_budget, monkeypatch):
    monkeypatch.setenv("QSTORE_THREADS", "3")
    assert fresh_budget(busy=2).override == 3
    assert threads.engine_threads(BIG) == 3
    monkeypatch.setenv("QSTORE_THREADS", "auto")
    assert threads.thread_budget(refresh=True).override is None
    assert threads.engine_threads(BIG) == 1  # two busy processes on two cores


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_invalid_override_names_the_variable_and_the_fix(monkeypatch, value):
    monkeypatch.setenv("QSTORE_THREADS", value)
    with pytest.raises(ValueError, match=r"QSTORE_THREADS.*'auto' or a positive integer"):
        threads.threads_override()


def test_load_ddp_ranks_and_omp_num_threads_shape_the_budget(fresh_budget, monkeypatch):
    assert fresh_budget(busy=0).threads(BIG) == 2
    assert fresh_budget(busy=1).threads(BIG) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun --nproc_per_node=2
    assert fresh_budget(busy=0).share == 2
    assert fresh_budget(busy=0).threads(BIG) == 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Dask's nanny sets in its workers
    assert fresh_budget(busy=0).threads(BIG) == 1


def test_load_samples_are_smoothed(monkeypatch):
    load = threads._Load()
    samples = iter([3, 1, 1, 1])  # runnable tasks, the reader included
    monkeypatch.setattr(threads, "_runnable_tasks", lambda: next(samples))
    monkeypatch.setattr(threads, "_own_runnable_threads", lambda: 1)
    assert [load.busy_elsewhere(cores=2) for _ in range(4)] == [2, 1, 0, 0]


def test_one_odd_sample_is_no_busy_process_and_a_lasting_one_is(monkeypatch):
    load = threads._Load()
    samples = iter([1, 2, 1, 2, 2, 2])  # a kernel worker once, then a busy process
    monkeypatch.setattr(threads, "_runnable_tasks", lambda: next(samples))
    monkeypatch.setattr(threads, "_own_runnable_threads", lambda: 1)
    assert [load.busy_elsewhere(cores=2) for _ in range(6)] == [0, 0, 0, 0, 1, 1]


def test_the_load_leaves_out_this_processs_own_running_threads(monkeypatch):
    """numba's or torch's workers finishing a parallel region run in this process; counted
    as other processes, they halved the engine's threads on a 2-core machine."""
    monkeypatch.setattr(threads, "_own_runnable_threads", lambda: 4)  # reader + 3 workers
    monkeypatch.setattr(threads, "_runnable_tasks", lambda: 5)
    assert threads._Load().busy_elsewhere(cores=64) == 1
    monkeypatch.setattr(threads, "_runnable_tasks", lambda: 4)
    assert threads._Load().busy_elsewhere(cores=64) == 0


def test_this_processs_running_threads_are_counted_as_its_own():
    """Whatever else the machine runs (the suite runs in parallel workers), this process's
    own spinning threads are counted, and no longer once they stop."""
    stop = threading.Event()
    data = bytes(64 << 20)

    def spin():  # hashing 64 MB releases the GIL for a long while: the threads run together
        while not stop.is_set():
            hashlib.sha256(data).digest()

    spinners = [threading.Thread(target=spin) for _ in range(3)]
    for spinner in spinners:
        spinner.start()
    try:
        time.sleep(0.05)
        spinning = [threads._own_runnable_threads() for _ in range(10)]
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
    stopped = []
    for _ in range(10):
        stopped.append(threads._own_runnable_threads())
        time.sleep(0.01)
    assert max(spinning) >= 4  # the three spinners and the reader, running or waiting
    assert min(stopped) <= 2, stopped  # the reader (and a worker of another library)


def test_cgroup_quota_limits_the_cores(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.usable_cores() == affinity
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.5)
    assert threads.usable_cores() == 1


def test_dask_worker_gets_its_share_per_task_slot():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.submit(threads._share, pure=False).result() == 2
    assert threads._share() == 1  # outside a task


def test_numba_threads_sets_and_restores_the_calling_threads_count(fresh_budget, monkeypatch):
    monkeypatch.setenv("QSTORE_THREADS", "2")
    fresh_budget()
    numba.set_num_threads(1)
    with threads.numba_threads(BIG) as count:
        assert count == numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    assert numba.get_num_threads() == 1
    with threads.numba_threads(16) as count:
        assert count == numba.get_num_threads() == 1


def test_qsim_threads_follow_the_policy_unless_given(fresh_budget, monkeypatch):
    from qstore_pl.devices.qsim.simulator import QsimSimulator

    monkeypatch.setenv("QSTORE_THREADS", "2")
    fresh_budget()
    decided = QsimSimulator(4)
    assert decided.threads_for(4) == 1 and decided.threads_for(20) == 2
    assert QsimSimulator(4, num_threads=3).threads_for(4) == 3
    assert qml.device("qstore.qsim", wires=2).cpu_threads is None


def _w1_like(n: int):
    def circuit(inputs, weights):
        for i in range(n):
            qml.RX(inputs[..., i], wires=i)
        for layer in range(2):
            for i in range(n):
                qml.RY(weights[layer, i], wires=i)
            for i in range(n):
                qml.CNOT([i, (i + 1) % n])
        return [qml.expval(qml.Z(i)) for i in range(n)]

    return circuit


@pytest.mark.parametrize("count", ["1", "2"])
def test_threaded_and_single_threaded_runs_equal_default_qubit(fresh_budget, monkeypatch, count):
    """A batch large enough to run in parallel (32 rows at 10 qubits): values and
    gradients on the batched engine and on qsim match default.qubit with 1 or 2 threads."""
    monkeypatch.setenv("QSTORE_THREADS", count)
    fresh_budget()
    n = 10
    rng = np.random.default_rng(7)
    inputs = qml.numpy.array(rng.uniform(0, np.pi, (32, n)), requires_grad=False)
    weights = qml.numpy.array(rng.uniform(0, np.pi, (2, n)), requires_grad=True)
    reference_dev = qml.device("default.qubit", wires=n)
    reference = qml.QNode(_w1_like(n), reference_dev)

    def cost(qnode):
        return lambda w: qml.math.sum(qml.math.stack(qnode(inputs, w)) ** 2)

    expected = cost(reference)(weights)
    expected_grad = qml.grad(cost(reference))(weights)
    batched = qml.QNode(_w1_like(n), qml.device("qstore.batched", wires=n), diff_method="adjoint")
    assert np.allclose(cost(batched)(weights), expected, atol=1e-10)
    assert np.allclose(qml.grad(cost(batched))(weights), expected_grad, atol=1e-10)
    qsim = qml.QNode(_w1_like(n), qml.device("qstore.qsim", wires=n))
    assert np.allclose(cost(qsim)(weights), expected, atol=1e-3)  # complex64 on 320 values


_PROBE = (
    "import json, os, sys\n"
    "first = sys.argv[1:]\n"
    "[__import__(m) for m in first]\n"
    "import qstore_pl\n"
    "from qstore_pl import threads\n"
    "import numba; numba.set_num_threads(1)\n"  # loads numba's OpenMP runtime after
    "print(json.dumps({'env': {k: os.environ.get(k) for k in "
    "('OMP_WAIT_POLICY', 'KMP_BLOCKTIME')}, 'report': threads.report(), "
    "'loaded': [os.path.basename(p) for p in threads.loaded_openmp_runtimes()]}))\n"
)


def _probe(env_changes: dict, *first_imports: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    env.update(env_changes)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *first_imports],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-2000:]  # says it without warnings
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_sets_passive_waiting_when_unset():
    fresh = _probe({})
    assert fresh["env"] == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert "set by qstore_pl" in fresh["report"] and "still spin" not in fresh["report"]
    assert any(name.startswith("libgomp") for name in fresh["loaded"])  # numba's, after


def test_import_keeps_a_users_value_and_names_runtimes_loaded_before():
    late = _probe({"OMP_WAIT_POLICY": "active"}, "torch")
    assert late["env"] == {"OMP_WAIT_POLICY": "active", "KMP_BLOCKTIME": "0"}
    assert "OMP_WAIT_POLICY=active (yours)" in late["report"]
    assert "still spin when idle: libgomp" in late["report"]  # torch's


def test_passive_waiting_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(threads, "_wait_policy", threads._wait_policy)  # restored after
    environ = {"QSTORE_PASSIVE_WAIT": "0"}
    assert threads.prefer_passive_waiting(environ).disabled
    assert environ == {"QSTORE_PASSIVE_WAIT": "0"}
    assert "QSTORE_PASSIVE_WAIT=0" in threads.report()
    environ = {"KMP_BLOCKTIME": "200"}
    policy = threads.prefer_passive_waiting(environ)
    assert environ == {"KMP_BLOCKTIME": "200", "OMP_WAIT_POLICY": "PASSIVE"}
    assert policy.user_values == {"KMP_BLOCKTIME": "200"}


def test_engine_calls_running_at_once_in_this_process_share_the_cores(fresh_budget):
    """Counted as load, this process's own threads once kept concurrent engine calls
    from taking every core each; they now share the cores explicitly."""
    fresh_budget()  # 2 cores, nothing busy elsewhere
    entered, release = threading.Event(), threading.Event()
    counts = {}

    def first():
        with threads.numba_threads(BIG) as count:
            counts["first"] = count
            entered.set()
            release.wait(30)

    other = threading.Thread(target=first)
    other.start()
    try:
        assert entered.wait(30)
        with threads.numba_threads(BIG) as count:
            counts["beside"] = count
    finally:
        release.set()
        other.join()
    with threads.numba_threads(BIG) as count:
        counts["alone again"] = count
    available = min(2, numba.config.NUMBA_NUM_THREADS)
    assert counts == {"first": available, "beside": 1, "alone again": available}
