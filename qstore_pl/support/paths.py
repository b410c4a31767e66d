"""Where qstore_pl writes its files, and the environment variables that move them.

Defaults follow the platform's conventions through ``platformdirs`` (on Linux the XDG
base directories: ``$XDG_CACHE_HOME`` for what can be rebuilt, ``$XDG_DATA_HOME`` for
what must be kept); each location also has a variable of its own. ``qstore-pl paths``
prints them all. This module is light: it imports neither PennyLane nor numpy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "qstore_pl"
#: Directory of the calibration cache (rebuilt when deleted).
CACHE_DIR_ENV = "QSTORE_CACHE_DIR"
#: The spending ledger (SQLite file); keep it: it holds what cloud jobs cost.
LEDGER_ENV = "QSTORE_LEDGER"
#: Directory of the embedded state store (Qdrant local mode).
DB_PATH_ENV = "QSTORE_DB_PATH"
#: Directory of the state recorder's spools (states not yet acknowledged by a store).
SPOOL_DIR_ENV = "QSTORE_SPOOL_DIR"
#: numba's own variable: where compiled kernels of ``qstore.batched`` are cached.
NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"


def _from_env(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """``$QSTORE_CACHE_DIR``, else the user cache directory (``$XDG_CACHE_HOME/qstore_pl``)."""
    return _from_env(CACHE_DIR_ENV) or Path(platformdirs.user_cache_dir(APP))


def data_dir() -> Path:
    """The user data directory (``$XDG_DATA_HOME/qstore_pl`` on Linux)."""
    return Path(platformdirs.user_data_dir(APP))


def ledger_path() -> Path:
    """``$QSTORE_LEDGER``, else ``spending.sqlite`` in the user data directory."""
    return _from_env(LEDGER_ENV) or data_dir() / "spending.sqlite"


def store_path() -> Path:
    """``$QSTORE_DB_PATH``, else ``states/`` in the user data directory."""
    return _from_env(DB_PATH_ENV) or data_dir() / "states"


def spool_dir() -> Path:
    """``$QSTORE_SPOOL_DIR``, else ``spool/`` in the user data directory."""
    return _from_env(SPOOL_DIR_ENV) or data_dir() / "spool"


def numba_cache_dir() -> Path:
    """Where numba caches ``qstore.batched``'s compiled kernels.

    ``$NUMBA_CACHE_DIR``, else beside the kernels' source when that directory is
    writable, else numba's user-wide cache (``$XDG_CACHE_HOME/numba``).
    """
    configured = _from_env(NUMBA_CACHE_ENV)
    if configured:
        return configured
    beside = Path(__file__).parents[1] / "devices" / "batched"
    if os.access(beside, os.W_OK):
        return beside / "__pycache__"
    return Path(platformdirs.user_cache_dir("numba", appauthor=False))


@dataclass(frozen=True)
class Location:
    """One kind of file qstore_pl writes."""

    what: str
    path: Path
    variable: str
    note: str


def locations() -> list[Location]:
    """Every place qstore_pl writes to, as configured in this environment.

    A router ``config`` can still name another ledger file (``ledger:``), and
    :func:`~qstore_pl.db.open_store` and the recorder take explicit paths.
    """
    return [
        Location(
            "calibration cache",
            cache_dir(),
            CACHE_DIR_ENV,
            "measured time models per machine; safe to delete (recalibrates)",
        ),
        Location("spending ledger", ledger_path(), LEDGER_ENV, "what cloud jobs cost; keep it"),
        Location("state store", store_path(), DB_PATH_ENV, "open_store()'s embedded store"),
        Location("recorder spool", spool_dir(), SPOOL_DIR_ENV, "states not yet in their store"),
        Location("kernel cache", numba_cache_dir(), NUMBA_CACHE_ENV, "numba's compiled kernels"),
    ]
