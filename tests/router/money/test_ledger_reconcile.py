"""Reconciliation sets each charge to what the provider billed for its jobs."""

import sqlite3

import pytest

from qstore_pl.router.money.ledger import Ledger, ProviderJob


def test_every_charge_takes_the_providers_figure(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for execution in "abcdf":
        ledger.reserve(execution, "hw", 2.0, budget=100.0)
    ledger.mark_unconfirmed("a", "hw")  # results lost: the job ran
    ledger.mark_unconfirmed("b", "hw")  # no answer: the job never came
    ledger.commit("c", "hw", 2.0)  # the provider charged more than estimated
    # "d" stays reserved by this (live) process: its job is in flight
    ledger.mark_unconfirmed("f", "hw")  # still running at the provider
    jobs = [
        ProviderJob("a", "hw", "completed", 2.0),
        ProviderJob("c", "hw", "completed", 2.5),
        ProviderJob("c", "hw", "failed", 0.0),
        ProviderJob("d", "hw", "completed", 2.0),
        ProviderJob("e", "hw", "completed", 3.0),  # the ledger never heard of it
        ProviderJob("f", "hw", "running", 0.0, estimate=2.0),
        ProviderJob("g", "other", "completed", 9.0),  # another backend's charge
    ]
    outcome = ledger.reconcile(jobs, backends={"hw"})
    assert (outcome.confirmed, outcome.released, outcome.pending, outcome.added) == (2, 1, 1, 1)
    report = ledger.report()
    assert report.total == pytest.approx(2.0 + 2.5 + 3.0)
    assert report.unconfirmed == pytest.approx(2.0)  # "f", until its job ends
    assert report.unreconciled == 0.0
    assert ledger.spent() == pytest.approx(7.5 + 2.0 + 2.0)  # "d" still reserved
    assert "1 released" in str(outcome) and "+1.50 USD" in str(outcome)  # b -2, c +0.5, e +3


def test_a_ledger_written_before_reconciliation_opens_and_reconciles(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE charges (execution TEXT NOT NULL, backend TEXT NOT NULL, "
            "purpose TEXT NOT NULL, state TEXT NOT NULL, usd REAL NOT NULL, "
            "estimate REAL NOT NULL, circuits INTEGER NOT NULL, shots INTEGER NOT NULL, "
            "pid INTEGER NOT NULL, host TEXT NOT NULL, created REAL NOT NULL, "
            "updated REAL NOT NULL, PRIMARY KEY (execution, backend))"
        )
        db.execute(
            "INSERT INTO charges VALUES ('x', 'hw', 'validation', 'committed', 2, 2, 1, 100, "
            "1, 'h', 0, 0)"
        )
    ledger = Ledger(path)
    assert ledger.report().unreconciled == 2.0
    ledger.reconcile([ProviderJob("x", "hw", "completed", 2.0)])
    assert ledger.report().total == 2.0 and ledger.report().unreconciled == 0.0


def test_a_rehearsal_is_a_settled_free_entry_that_reconciliation_leaves_alone(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.reserve("q", "hw", 2.0)
    ledger.commit("q", "hw", 2.0)
    ledger.record_rehearsal("r", "rehearsal", "aria-1", "rehearsal", circuits=3, shots=100)
    ledger.record_rehearsal("r", "rehearsal", "aria-1", "rehearsal", circuits=3, shots=100)
    reopened = Ledger(path)  # written through: a new process reads it
    ledger.reconcile([ProviderJob("q", "hw", "completed", 2.0)])  # every backend
    report = reopened.report()
    assert report.by_backend == {"hw": 2.0, "rehearsal": 0.0}
    assert (report.executions["rehearsal"], report.shots["rehearsal"]) == (3, 300)  # once
    assert report.rehearsals == {"rehearsal": "aria-1"}
    assert report.total == 2.0 and report.unreconciled == 0.0
    assert reopened.spent() == 2.0
