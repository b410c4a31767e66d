"""The spending ledger: a SQLite file that makes budgets hold.

Every priced job is first *reserved* at its estimated cost, inside one write
transaction that also checks the limits, so concurrent submitters (threads or
processes sharing the file) can never reserve more than the budget together. After
the job completes the reservation is *committed* at the actual charge; when it fails
it is *released*; when its outcome is unknown (it timed out after submission: IonQ may
still run and bill it) it stays counted as *unconfirmed*. Rows are keyed by
``(execution, backend)``: retrying one execution reserves and charges once. The file
uses SQLite's write-ahead log with full syncs, so what was committed survives a crash;
reservations of a process that died stay counted (as unconfirmed) too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from qstore_pl import paths
from qstore_pl.exceptions import BudgetExceeded
from qstore_pl.router.cost_report import CostReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    execution TEXT NOT NULL,
    backend TEXT NOT NULL,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('reserved', 'committed', 'released', 'unconfirmed', 'saved')),
    usd REAL NOT NULL,
    estimate REAL NOT NULL,
    circuits INTEGER NOT NULL,
    shots INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (execution, backend)
)
"""
_SPENT = (
    "SELECT COALESCE(SUM(usd), 0) FROM charges "
    "WHERE state IN ('reserved', 'committed', 'unconfirmed')"
)


def default_ledger_path() -> Path:
    """``$QSTORE_LEDGER``, else ``spending.sqlite`` in the user's data directory."""
    return paths.ledger_path()


class Ledger:
    """Reservations and charges in one SQLite file.

    Parameters
    ----------
    path : str or Path, optional
        The file (created with its folder if missing); default :func:`default_ledger_path`.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_ledger_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # one connection per operation: sqlite connections must not cross threads
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # takes the write lock before reading totals
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def reserve(
        self,
        execution: str,
        backend: str,
        usd: float,
        *,
        purpose: str = "training",
        circuits: int = 0,
        shots: int = 0,
        budget: float | None = None,
        max_per_batch: float | None = None,
    ) -> bool:
        """Reserve ``usd`` for one job, or raise if a limit would be passed.

        Returns
        -------
        bool
            ``True`` if reserved now, ``False`` if this execution already has a row on
            this backend (a retry: nothing more is reserved).

        Raises
        ------
        BudgetExceeded
            If ``usd > max_per_batch`` or spending plus reservations plus ``usd`` would
            exceed ``budget``. Nothing is reserved then.
        """
        if max_per_batch is not None and usd > max_per_batch:
            raise BudgetExceeded(backend, usd, self.spent(), max_per_batch, "max_cost_per_batch")
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT state FROM charges WHERE execution = ? AND backend = ?",
                (execution, backend),
            ).fetchone()
            if row is not None:
                return False
            spent = db.execute(_SPENT).fetchone()[0]
            if budget is not None and spent + usd > budget + 1e-12:
                raise BudgetExceeded(backend, usd, spent, budget, "budget")
            db.execute(
                "INSERT INTO charges VALUES (?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution,
                    backend,
                    purpose,
                    usd,
                    usd,
                    circuits,
                    shots,
                    os.getpid(),
                    socket.gethostname(),
                    now,
                    now,
                ),
            )
        return True

    def commit(self, execution: str, backend: str, usd: float) -> bool:
        """Turn a reservation into a charge of ``usd``; ``False`` if already settled."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE charges SET state = 'committed', usd = ?, updated = ? "
                "WHERE execution = ? AND backend = ? AND state = 'reserved'",
                (usd, time.time(), execution, backend),
            )
            return cursor.rowcount == 1

    def release(self, execution: str, backend: str) -> bool:
        """Cancel a reservation (the job did not run); ``False`` if already settled."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE charges SET state = 'released', usd = 0, updated = ? "
                "WHERE execution = ? AND backend = ? AND state = 'reserved'",
                (time.time(), execution, backend),
            )
            return cursor.rowcount == 1

    def mark_unconfirmed(self, execution: str, backend: str) -> bool:
        """Keep a reservation counted: the job was submitted but its outcome is unknown."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE charges SET state = 'unconfirmed', updated = ? "
                "WHERE execution = ? AND backend = ? AND state = 'reserved'",
                (time.time(), execution, backend),
            )
            return cursor.rowcount == 1

    def record_saving(
        self, execution: str, backend: str, usd: float, purpose: str, circuits: int, shots: int
    ) -> None:
        """Record ``usd`` not spent on ``backend`` because a cache answered."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO charges VALUES (?, ?, ?, 'saved', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution,
                    backend,
                    purpose,
                    usd,
                    usd,
                    circuits,
                    shots,
                    os.getpid(),
                    socket.gethostname(),
                    now,
                    now,
                ),
            )

    def spent(self) -> float:
        """USD charged plus USD reserved for jobs in flight or unconfirmed."""
        with self._connect() as db:
            return float(db.execute(_SPENT).fetchone()[0])

    def report(self, budget: float | None = None) -> CostReport:
        """Totals per backend and purpose, savings and unconfirmed reservations."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT backend, purpose, state, usd, circuits, shots, pid, host FROM charges"
            ).fetchall()
        by_backend: dict[str, float] = {}
        by_purpose: dict[str, float] = {}
        executions: dict[str, int] = {}
        shots: dict[str, int] = {}
        saved = unconfirmed = 0.0
        host = socket.gethostname()
        for backend, purpose, state, usd, circuits, n_shots, pid, row_host in rows:
            if state == "saved":
                saved += usd
            elif state == "unconfirmed" or (
                state == "reserved" and not (row_host == host and _alive(pid))
            ):
                unconfirmed += usd
            elif state == "committed":
                by_backend[backend] = by_backend.get(backend, 0.0) + usd
                by_purpose[purpose] = by_purpose.get(purpose, 0.0) + usd
                executions[backend] = executions.get(backend, 0) + circuits
                shots[backend] = shots.get(backend, 0) + circuits * n_shots
        return CostReport(
            total=sum(by_backend.values()),
            by_backend=by_backend,
            by_purpose=by_purpose,
            executions=executions,
            shots=shots,
            saved=saved,
            unconfirmed=unconfirmed,
            budget=budget,
            ledger=str(self.path),
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
