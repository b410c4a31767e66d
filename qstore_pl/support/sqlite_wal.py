"""Write-ahead logging for SQLite files that several processes open at once."""

from __future__ import annotations

import sqlite3
import time


def use_wal(db: sqlite3.Connection, timeout: float = 60.0) -> None:
    """Put the file behind ``db`` in write-ahead-log mode, waiting up to ``timeout``
    seconds while another connection holds it.

    Switching takes an exclusive lock, and SQLite answers "database is locked" at once
    instead of waiting out the busy timeout: processes that opened a new ledger or
    spool together failed (3-16 trials of 20 with eight processes). The mode is kept in
    the file, so a connection that finds it set changes nothing.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            busy = err.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
