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

Only the provider knows what it billed: every priced job carries the row it belongs to
in its metadata (:data:`~qstore_pl.devices.job_tags.CHARGE_TAG`,
:data:`~qstore_pl.devices.job_tags.BACKEND_TAG`), and :meth:`Ledger.reconcile`
sets each row to what the provider's job list says it charged (``qstore-pl ledger
reconcile``). Rows not checked against the provider yet show as unreconciled.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qstore_pl.exceptions import BudgetExceeded
from qstore_pl.router.money.report import CostReport
from qstore_pl.support import paths
from qstore_pl.support.sqlite_wal import use_wal

#: Provider job states after which the charge no longer changes.
FINAL_STATES = frozenset({"completed", "failed", "canceled"})
_COLUMNS = (
    "execution, backend, purpose, state, usd, estimate, circuits, shots, pid, host, "
    "created, updated"
)
_VALUES = ", ".join("?" * len(_COLUMNS.split(",")))

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
            use_wal(db)  # not inside a transaction
        # one process at a time: processes opening a new ledger together each found the
        # columns missing and added them, and all but the first failed
        with self._transaction() as db:
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(charges)")}
            if "reconciled" not in columns:  # ledgers written before reconciliation
                db.execute("ALTER TABLE charges ADD COLUMN reconciled REAL")
            if "noise_model" not in columns:  # ledgers written before rehearsals
                db.execute("ALTER TABLE charges ADD COLUMN noise_model TEXT")

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
            _insert(db, (execution, backend), purpose, "reserved", usd, circuits, shots, now)
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
            _insert(
                db, (execution, backend), purpose, "saved", usd, circuits, shots, now, keep=True
            )

    def record_rehearsal(
        self,
        execution: str,
        backend: str,
        noise_model: str,
        purpose: str,
        circuits: int,
        shots: int,
    ) -> None:
        """Record a hardware rehearsal on ``backend`` (``noise_model``, e.g. ``"aria-1"``):
        a charge of 0 USD, settled (nothing to reconcile: it ran here), so the report
        lists what was rehearsed beside what was paid for."""
        now = time.time()
        with self._transaction() as db:
            key = (execution, backend)
            _insert(db, key, purpose, "committed", 0.0, circuits, shots, now, keep=True)
            db.execute(
                "UPDATE charges SET reconciled = ?, noise_model = ? "
                "WHERE execution = ? AND backend = ?",
                (now, noise_model, execution, backend),
            )

    def spent(self) -> float:
        """USD charged plus USD reserved for jobs in flight or unconfirmed."""
        with self._connect() as db:
            return float(db.execute(_SPENT).fetchone()[0])

    def report(self, budget: float | None = None) -> CostReport:
        """Totals per backend and purpose, savings and unconfirmed reservations."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT backend, purpose, state, usd, circuits, shots, pid, host, reconciled, "
                "noise_model FROM charges"
            ).fetchall()
        by_backend: dict[str, float] = {}
        by_purpose: dict[str, float] = {}
        executions: dict[str, int] = {}
        shots: dict[str, int] = {}
        rehearsals: dict[str, str] = {}
        saved = unconfirmed = unreconciled = 0.0
        host = socket.gethostname()
        for row in rows:
            backend, purpose, state, usd, circuits, n_shots, pid, row_host, checked, model = row
            if model is not None:
                rehearsals[backend] = model
            if state == "committed" and checked is None:
                unreconciled += usd
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
            unreconciled=unreconciled,
            rehearsals=rehearsals,
            budget=budget,
            ledger=str(self.path),
        )

    def reconcile(
        self, jobs: Iterable[ProviderJob], backends: Collection[str] | None = None
    ) -> Reconciliation:
        """Set every charge to what the provider billed for its jobs.

        A charge whose jobs all reached a final state becomes committed at the sum
        of their costs (failed jobs cost nothing); one with a job still running stays
        unconfirmed; one with no job at the provider was never run and is released (or
        committed at 0). Provider jobs tagged with a charge the ledger lacks are added.
        Reservations of live processes on this host are left to their process.

        Parameters
        ----------
        jobs : Iterable[ProviderJob]
            The provider's jobs that carry
            :data:`~qstore_pl.devices.job_tags.CHARGE_TAG` (all of them: a charge with
            no job listed is released).
        backends : Collection[str], optional
            Backends whose charges the job list covers (default: every backend).
        """
        billed: dict[tuple[str, str], list[ProviderJob]] = {}
        for job in jobs:
            if backends is None or job.backend in backends:
                billed.setdefault((job.execution, job.backend), []).append(job)
        outcome = Reconciliation()
        now, host = time.time(), socket.gethostname()
        with self._transaction() as db:
            rows = db.execute(
                "SELECT execution, backend, state, usd, pid, host FROM charges "
                "WHERE state != 'saved'"
            ).fetchall()
            for execution, backend, state, usd, pid, row_host in rows:
                if backends is not None and backend not in backends:
                    continue
                found = billed.pop((execution, backend), [])
                if state == "reserved" and row_host == host and _alive(pid):
                    continue  # its process settles it
                if any(j.status not in FINAL_STATES for j in found):
                    new_state, new_usd, checked = "unconfirmed", usd, None
                    outcome.pending += 1
                elif found:
                    new_state, new_usd, checked = "committed", sum(j.usd for j in found), now
                    outcome.confirmed += 1
                else:  # the provider has no job of this charge: nothing was billed
                    new_state = "committed" if state == "committed" else "released"
                    new_usd, checked = 0.0, now
                    outcome.released += state != "committed"
                outcome.changed_usd += new_usd - usd
                db.execute(
                    "UPDATE charges SET state = ?, usd = ?, reconciled = ?, updated = ? "
                    "WHERE execution = ? AND backend = ?",
                    (new_state, new_usd, checked, now, execution, backend),
                )
            for (execution, backend), found in billed.items():
                final = all(j.status in FINAL_STATES for j in found)
                usd = sum(j.usd if final else j.estimate for j in found)
                state = "committed" if final else "unconfirmed"
                key = (execution, backend)
                _insert(db, key, "unrecorded", state, usd, len(found), 0, now, by=(0, "provider"))
                if final:
                    db.execute(
                        "UPDATE charges SET reconciled = ? WHERE execution = ? AND backend = ?",
                        (now, execution, backend),
                    )
                outcome.added += 1
                outcome.changed_usd += usd
        return outcome


@dataclass(frozen=True)
class ProviderJob:
    """One provider job as its job list reports it.

    Attributes
    ----------
    execution, backend : str
        The ledger row it belongs to (from its metadata).
    status : str
        Provider status (``completed``, ``failed``, ``running``, ...).
    usd : float
        What the provider charged (0 until the job is final).
    estimate : float
        The provider's estimate, counted while the job is not final.
    """

    execution: str
    backend: str
    status: str
    usd: float
    estimate: float = 0.0


@dataclass
class Reconciliation:
    """What :meth:`Ledger.reconcile` changed: charges confirmed at the provider's
    cost, released (no job), still pending (a job not final), added (jobs the ledger
    lacked), and the change of the USD counted against the budget."""

    confirmed: int = 0
    released: int = 0
    pending: int = 0
    added: int = 0
    changed_usd: float = 0.0

    def __str__(self) -> str:
        return (
            f"reconciled: {self.confirmed} charge(s) confirmed, {self.released} released "
            f"(no job at the provider), {self.pending} still running (unconfirmed), "
            f"{self.added} added from the provider's list; spending counted against the "
            f"budget changed by {self.changed_usd:+.2f} USD"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _insert(
    db: sqlite3.Connection,
    key: tuple[str, str],
    purpose: str,
    state: str,
    usd: float,
    circuits: int,
    shots: int,
    now: float,
    keep: bool = False,
    by: tuple[int, str] | None = None,
) -> None:
    """Add the row of charge ``key`` (``(execution, backend)``), estimated at ``usd``.

    ``keep``: leave a row already there as it is. ``by``: the ``(pid, host)`` that
    made the charge; this process by default.
    """
    pid, host = by if by is not None else (os.getpid(), socket.gethostname())
    verb = "INSERT OR IGNORE" if keep else "INSERT"
    db.execute(
        f"{verb} INTO charges ({_COLUMNS}) VALUES ({_VALUES})",
        (*key, purpose, state, usd, usd, circuits, shots, pid, host, now, now),
    )
