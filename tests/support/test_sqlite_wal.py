"""SQLite files several processes open at once (``support/sqlite_wal.py``): DDP ranks,
Dask workers and notebook kernels open the same spending ledger and the same state
spool, often for the first time together."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from qstore_pl.db.spool import Spool
from qstore_pl.router.money.ledger import Ledger

PROCESSES = 8


def _open(kind, paths, barrier, results):
    """In each process: for every path it is sent, wait for the others, then open the
    file and write to it."""
    for path in iter(paths.get, None):
        barrier.wait()
        try:
            if kind == "ledger":
                Ledger(path).reserve(f"run-{os.getpid()}", "hw", 1.0, budget=100.0)
            else:
                Spool(path).close()
            results.put("ok")
        except Exception as err:  # reported, not raised: the parent asserts
            results.put(f"{type(err).__name__}: {err}")


@pytest.mark.parametrize("kind, trials", [("ledger", 6), ("spool", 24)])
def test_processes_opening_a_new_file_together_all_succeed(tmp_path, kind, trials):
    """Before the fix, opening a new ledger together failed in 16 trials of 20 (two
    processes adding the same columns), and a new spool in 3 of 20 (switching to
    write-ahead logging answers "database is locked" without waiting)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["qstore_pl.db.spool", "qstore_pl.router.money.ledger"])
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    queues = [context.Queue() for _ in range(PROCESSES)]
    procs = [
        context.Process(target=_open, args=(kind, q, barrier, results), daemon=True) for q in queues
    ]
    for proc in procs:
        proc.start()
    try:
        for trial in range(trials):
            path = str(tmp_path / f"{kind}-{trial}.sqlite")
            for q in queues:
                q.put(path)
            outcomes = [results.get(timeout=120) for _ in procs]
            assert outcomes == ["ok"] * PROCESSES, (trial, outcomes)
            if kind == "ledger":
                assert Ledger(path).spent() == PROCESSES  # every reservation, once
    finally:
        for q in queues:
            q.put(None)
        for proc in procs:
            proc.join(timeout=60)
