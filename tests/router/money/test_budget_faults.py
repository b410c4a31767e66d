"""Budgets as the provider sees them: every fault the IonQ emulator injects, 8 processes
on one ledger, a SIGKILLed process. The emulator bills every job that completed, as IonQ
would; that total never exceeds the budget, and after reconciliation the ledger equals it.
"""

import multiprocessing
import os
import signal
import time
from collections import Counter
from dataclasses import asdict

import pennylane as qml
import pytest
from ionq_support import API_KEY, emulator_server, ionq

import qstore_pl
from qstore_pl.cli import main as cli
from qstore_pl.devices.ionq.emulator import Faults
from qstore_pl.devices.ionq.pricing import PricingModel
from qstore_pl.devices.job_tags import CHARGE_TAG
from qstore_pl.exceptions import JobOutcomeUnknown
from qstore_pl.router.execution.executors import GroupWork
from qstore_pl.router.money.ledger import Ledger
from qstore_pl.router.money.reconcile import reconcile_ionq
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.spec import BackendSpec

FLAT = {"model": "per_gate_shot", "cost_1q": 1e-9, "cost_2q": 1e-9, "minimum": 2.0}
BUDGET = 15.0  # 7 jobs at 2 USD
WORKERS = 8
CALLS = 2  # per worker and fault: 16 calls want 32 USD, the budget allows 15
# requests time out after 0.2 s, quickly retried; a job must finish within 1 s
OPTIONS = {"request_timeout": 0.2, "retries": 2, "backoff": 0.01, "job_timeout": 1.0}

emulator = pytest.fixture(emulator_server, name="emulator")


def hardware(ledger):
    entry = ionq("hardware", "qpu.aria-1", pricing=FLAT, options=OPTIONS)
    return {"backends": [entry], "ledger": str(ledger), "budget": BUDGET}


def worker(commands, answers):
    """One process: for each (server, ledger) it is sent, ``CALLS`` priced calls; what
    happened."""
    os.environ.update(IONQ_API_KEY=API_KEY, QSTORE_CALIBRATION="off")
    for url, ledger in iter(commands.get, None):
        os.environ["QSTORE_IONQ_URL"] = url
        dev = qml.device("qstore.router", wires=2, router_config=hardware(ledger))

        @qml.qnode(dev, shots=100)
        def circuit(x):
            qml.RX(x, 0)
            qml.CNOT([0, 1])
            return qml.expval(qml.Z(1))

        outcomes = []
        with qstore_pl.purpose("validation"):
            for i in range(CALLS):
                try:
                    circuit(0.1 * i)
                    outcomes.append("ok")
                except Exception as err:
                    outcomes.append(type(err).__name__)
        answers.put(outcomes)


class Workers:
    """Processes forked from a server that imported PennyLane once, kept for every test."""

    def __init__(self):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(
            ["pennylane", "qstore_pl.router.device", "pennylane_ionq"]
        )
        self.answers = self.context.Queue()
        self.procs = [self.start() for _ in range(WORKERS)]

    def start(self):
        commands = self.context.Queue()
        proc = self.context.Process(target=worker, args=(commands, self.answers), daemon=True)
        proc.start()
        proc.commands = commands
        return proc

    def replace(self, i):
        self.procs[i].join()
        self.procs[i] = self.start()

    def stop(self):
        for proc in self.procs:
            proc.commands.put(None)
        for proc in self.procs:
            proc.join(timeout=30)


@pytest.fixture(scope="module")
def workers():
    pool = Workers()
    yield pool
    pool.stop()


FAULTS = {
    "5xx and 429 on submissions and polls": {
        "post_errors": [503, 429, 500, 502, 503],
        "get_errors": [502, 503, 500, 429],
    },
    "5xx answered after the job was created": {"lost_answers": [502, 504, 502, 500]},
    "429 on the results of completed jobs": {"results_errors": [429] * 9},
    "unparseable results": {"bad_results": 6},
    "latency above the request timeout": {"latency": 0.4},
    "FAILED jobs": {"failed_jobs": 4},
    "hanging jobs": {"hang": True},
    "rate limit": {"rate_limit": 8.0},
    "a process SIGKILLed mid-job": {"job_seconds": 0.5},
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_provider_bill_stays_within_budget_and_reconciles(emulator, workers, tmp_path, fault):
    emulator.pricing = PricingModel(**FLAT)
    ledger = tmp_path / "ledger.sqlite"
    emulator.set_faults(**FAULTS[fault])
    for proc in workers.procs:
        proc.commands.put((emulator.url, str(ledger)))
    expected = WORKERS
    if fault == "a process SIGKILLed mid-job":
        while not emulator.jobs:  # a job is running: kill a process (maybe its submitter)
            time.sleep(0.01)
        os.kill(workers.procs[0].pid, signal.SIGKILL)
        workers.replace(0)
        expected -= 1
    outcomes = Counter(o for _ in range(expected) for o in workers.answers.get(timeout=120))
    emulator.set_faults(**asdict(Faults()))  # no more faults
    time.sleep(0.5)  # submissions that arrived late are created now
    bill = emulator.billing()
    assert bill["usd"] <= BUDGET, (fault, bill, outcomes)
    assert outcomes["BudgetExceeded"] > 0  # the budget, not luck, stopped the spending
    # at most one billable job per charge: no submission ran twice
    per_charge = Counter(
        j.payload["metadata"][CHARGE_TAG]
        for j in emulator.jobs.values()
        if j.status(emulator.faults) == "completed"
    )
    assert max(per_charge.values(), default=1) == 1

    book = Ledger(ledger)
    before = book.report(BUDGET)
    assert before.total + before.unconfirmed >= bill["usd"] - 1e-9  # the ledger never trails
    reconcile_ionq(book, emulator.url)
    after = book.report(BUDGET)
    assert after.total == pytest.approx(bill["usd"])
    assert after.unconfirmed == 0.0 and after.unreconciled == 0.0


def test_reconcile_command_confirms_a_charge_whose_results_were_lost(emulator, tmp_path):
    emulator.pricing = PricingModel(**FLAT)
    cfg = hardware(tmp_path / "ledger.sqlite")
    cfg["fallback"] = False
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    emulator.set_faults(results_errors=[429, 429, 429])  # the job runs, its results never come

    @qml.qnode(dev, shots=100)
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    with qstore_pl.purpose("validation"), pytest.raises(Exception, match="results could not"):
        circuit(0.2)
    assert emulator.billing() == {"jobs": 1, "usd": 2.0}
    report = dev.cost_report()
    assert report.total == 0.0 and report.unconfirmed == 2.0  # kept: the job ran
    assert "unconfirmed" in str(report) and "qstore-pl ledger reconcile" in str(report)
    assert "2.00 USD unconfirmed" in str(dev.explain(circuit, 0.2))

    assert cli(["ledger", "reconcile", "--ledger", cfg["ledger"], "--url", emulator.url]) == 0
    report = dev.cost_report()
    assert report.total == 2.0 and report.unconfirmed == 0.0 and report.unreconciled == 0.0


def test_a_slow_server_gets_one_job_per_call_and_the_outcome_is_unknown(emulator):
    emulator.set_faults(latency=0.4)  # every request outlives the client's 0.2 s
    dev = qml.device("qstore.ionq", wires=1, **OPTIONS)

    @qml.qnode(dev, shots=100)
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    with pytest.raises(JobOutcomeUnknown, match="whether it was created"):
        circuit(0.1)
    emulator.set_faults(latency=0.0)
    time.sleep(0.5)
    assert len(emulator.jobs) == 1  # pennylane-ionq would have posted it 4 times, we 3 more


def test_a_refusal_that_created_the_job_is_not_sent_again(emulator):
    emulator.set_faults(lost_answers=[502, 502, 502])  # every answer lost, each time
    dev = qml.device("qstore.ionq", wires=1, **OPTIONS)

    @qml.qnode(dev, shots=100)
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    assert circuit(0.0) == 1.0
    assert len(emulator.jobs) == 1 and emulator.faults.lost_answers == [502, 502]


def test_metered_work_is_never_split_across_workers():
    caps = BackendCapabilities(max_wires=4, operations=frozenset({"RX"}))
    local = BackendSpec("lightning", "lightning.qubit", caps)
    metered = BackendSpec("hardware", "qstore.ionq", caps, metered=True)
    tapes = [qml.tape.QuantumScript([qml.RX(0.1 * i, 0)], [qml.expval(qml.Z(0))]) for i in range(8)]
    assert len(GroupWork("o", local, 1, None, "execute", tapes).split(4)) == 4
    [whole] = GroupWork("o", metered, 1, None, "execute", tapes).split(4)
    assert list(whole.tapes) == tapes
