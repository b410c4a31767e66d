"""Budgets that hold: limits, concurrency, crashes, fallback, savings, the report."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pennylane as qml
import pytest
from ionq_support import API_KEY, config, emulator_server, ionq, two_qubit_circuit

import qstore_pl
from qstore_pl.callbacks import DeviceCallback
from qstore_pl.exceptions import BudgetExceeded
from qstore_pl.router.money.ledger import Ledger

# every hardware job below costs exactly the minimum: 2 USD
FLAT = {"model": "per_gate_shot", "cost_1q": 1e-9, "cost_2q": 1e-9, "minimum": 2.0}

emulator = pytest.fixture(emulator_server, name="emulator")


def hardware_config(tmp_path, **top):
    return config(
        tmp_path,
        ionq("hardware", "qpu.aria-1", pricing=FLAT, use_for="critical_only"),
        ionq("simulator", "simulator", use_for="training"),
        **top,
    )


# --------------------------------------------------------------------- ledger
def test_reservations_are_idempotent_and_settle_once(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    assert ledger.reserve("e1", "hw", 5.0, budget=10)
    assert not ledger.reserve("e1", "hw", 5.0, budget=10)  # a retry reserves nothing more
    assert ledger.spent() == 5.0
    assert ledger.commit("e1", "hw", 4.0) and not ledger.commit("e1", "hw", 4.0)
    assert ledger.reserve("e2", "hw", 6.0, budget=10)
    assert ledger.release("e2", "hw") and not ledger.commit("e2", "hw", 6.0)
    assert ledger.spent() == 4.0
    assert ledger.report().by_backend == {"hw": 4.0}


def test_limits_raise_with_the_numbers(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.reserve("e1", "hw", 7.5, budget=10)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("e2", "hw", 3.0, budget=10)
    message = str(info.value)
    assert "3.00 USD" in message and "10.00 USD" in message and "7.50 USD" in message
    assert "2.50 USD left" in message and "on_budget_exceeded='fallback'" in message
    assert (info.value.estimate, info.value.spent, info.value.kind) == (3.0, 7.5, "budget")
    with pytest.raises(BudgetExceeded, match=r"max_cost_per_batch = 1\.00 USD"):
        ledger.reserve("e3", "hw", 1.5, max_per_batch=1.0)
    assert ledger.spent() == 7.5


def test_concurrent_reservations_never_pass_the_budget(tmp_path):
    path = tmp_path / "l.sqlite"
    Ledger(path)
    granted, refused = [], []
    barrier = threading.Barrier(24)

    def submit(i):
        ledger = Ledger(path)  # as separate routers would
        barrier.wait()
        try:
            ledger.reserve(f"e{i}", "hw", 1.0, budget=10.0)
            granted.append(i)
        except BudgetExceeded:
            refused.append(i)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 10 and len(refused) == 14
    assert Ledger(path).spent() == 10.0


# --------------------------------------------------------------------- router
def test_raise_submits_nothing(emulator, tmp_path):
    dev = qml.device("qstore.router", wires=2, router_config=hardware_config(tmp_path, budget=3.0))
    circuit = two_qubit_circuit(dev)
    with qstore_pl.purpose("validation"):
        circuit(0.3)
        with pytest.raises(BudgetExceeded, match=r"would cost 2\.00 USD"):
            circuit(0.3)
    assert len(emulator.jobs) == 1
    assert dev.cost_report().total == pytest.approx(2.0)


def test_fallback_runs_down_the_chain_instead(emulator, tmp_path):
    cfg = hardware_config(
        tmp_path,
        max_cost_per_batch=1.0,
        on_budget_exceeded="fallback",
        fallback_chain=["simulator"],
    )
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    with qstore_pl.purpose("validation"):
        two_qubit_circuit(dev, shots=700)(0.3)
    [job] = emulator.jobs.values()
    assert job.payload["backend"] == "simulator" and job.payload["shots"] == 700
    report = dev.routing_report()
    [run] = report.recent
    assert run.backend == "simulator" and run.failed == ()
    # a budget refusal is not a backend failure, in the counts or in the words
    assert run.refused[0].startswith("hardware: ") and "max_cost_per_batch" in run.refused[0]
    assert report.totals["hardware"].failures == 0 and report.totals["hardware"].refused == 1
    assert "over a spending limit on 1 backend(s)" in run.reason
    assert "failure" not in run.reason
    assert "refused" in str(report)
    assert dev.cost_report().total == 0.0


def test_many_threads_through_one_router_stay_within_budget(emulator, tmp_path):
    dev = qml.device("qstore.router", wires=2, router_config=hardware_config(tmp_path, budget=9.0))
    circuit = two_qubit_circuit(dev, shots=100)
    outcomes = []

    def call(x):
        with qstore_pl.purpose("validation"):
            try:
                circuit(x)
                outcomes.append("ran")
            except BudgetExceeded:
                outcomes.append("refused")

    threads = [threading.Thread(target=call, args=(0.1 * i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ran") == 4 and outcomes.count("refused") == 8
    assert len(emulator.jobs) == 4
    assert dev.cost_report().total == pytest.approx(8.0)


def test_a_timed_out_job_stays_counted_and_the_chain_runs_the_work(emulator, tmp_path):
    cfg = hardware_config(tmp_path, budget=3.0, fallback_chain=["simulator"])
    cfg["backends"][0]["options"]["job_timeout"] = 0.3
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    circuit = two_qubit_circuit(dev)
    with qstore_pl.purpose("validation"):
        emulator.set_faults(job_seconds=30)  # the hardware job outlives its 0.3 s timeout
        threading.Timer(0.6, emulator.set_faults, kwargs={"job_seconds": 0}).start()
        circuit(0.3)  # hardware times out; the simulator answers once jobs finish again
        report = dev.cost_report()
        assert report.total == 0.0 and report.unconfirmed == pytest.approx(2.0)
        with pytest.raises(BudgetExceeded, match=r"2\.00 USD spent or reserved"):
            circuit(0.4)


def test_cache_hits_are_not_charged_and_show_as_saved(emulator, tmp_path):
    class Cache(DeviceCallback):
        def lookup(self, tape, backend):
            return np.float64(0.5)

        def on_execution(self, record):
            pass

    cfg = hardware_config(tmp_path)
    dev = qml.device("qstore.router", wires=2, router_config=cfg, callbacks=[Cache()])
    with qstore_pl.purpose("validation"):
        assert two_qubit_circuit(dev)(0.3) == 0.5
    report = dev.cost_report()
    assert not emulator.jobs and report.total == 0.0 and report.saved == pytest.approx(2.0)
    assert "saved by the result cache: 2.00 USD" in str(report)


def test_report_by_backend_and_purpose(emulator, tmp_path):
    dev = qml.device("qstore.router", wires=2, router_config=hardware_config(tmp_path, budget=50))
    circuit = two_qubit_circuit(dev, shots=250)
    circuit(0.1)  # training: the free simulator
    with qstore_pl.purpose("validation"):
        circuit(0.2)
        circuit(0.3)
    report = dev.cost_report()
    assert report.total == pytest.approx(4.0)
    assert report.by_backend == {"hardware": pytest.approx(4.0), "simulator": 0.0}
    assert report.by_purpose == {"validation": pytest.approx(4.0), "training": 0.0}
    assert report.executions == {"hardware": 2, "simulator": 1}
    assert report.shots == {"hardware": 500, "simulator": 250}
    text = str(report)
    assert "hardware" in text and "4.00" in text and "remaining 46.00 USD" in text
    assert API_KEY not in text + repr(dev) + str(dev.explain(circuit, 0.1)) + repr(dev.config)


CRASHING_RUN = textwrap.dedent(
    """
    import sys
    import pennylane as qml
    import qstore_pl

    FLAT = {"model": "per_gate_shot", "cost_1q": 1e-9, "cost_2q": 1e-9, "minimum": 2.0}
    cfg = {"backends": [{"name": "hardware", "type": "ionq", "target": "qpu.aria-1",
                         "pricing": FLAT}], "ledger": sys.argv[1]}
    dev = qml.device("qstore.router", wires=2, router_config=cfg)

    @qml.qnode(dev, shots=100)
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    with qstore_pl.purpose("validation"):
        for i in range(1000):
            circuit(0.1 * i)
            print("done", flush=True)
    """
)


def test_spending_survives_a_crash_mid_run(emulator, tmp_path):
    ledger_path = tmp_path / "ledger.sqlite"
    emulator.set_faults(job_seconds=0.3)  # each job runs a while: the kill lands mid-job
    env = {**os.environ, "QSTORE_CALIBRATION": "off"}
    script = tmp_path / "run.py"
    script.write_text(CRASHING_RUN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ledger_path)], stdout=subprocess.PIPE, env=env, text=True
    )
    for _ in range(3):
        assert proc.stdout.readline().strip() == "done"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = 3 + proc.stdout.read().count("done")
    report = Ledger(ledger_path).report()
    committed = report.by_backend["hardware"] / 2.0
    assert finished <= committed <= finished + 1
    assert report.unconfirmed in (0.0, 2.0)  # the job in flight, if any, stays counted
    # a restart with a budget just above what was spent or reserved refuses the next job
    budget = report.total + report.unconfirmed + 1.0
    cfg = config(tmp_path, ionq("hardware", "qpu.aria-1", pricing=FLAT), budget=budget)
    cfg["ledger"] = str(ledger_path)
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    with qstore_pl.purpose("validation"), pytest.raises(BudgetExceeded, match=r"1\.00 USD left"):
        two_qubit_circuit(dev)(0.3)
