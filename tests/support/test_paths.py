"""Where files go: XDG defaults, one variable per location, `qstore-pl paths`, clean exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qstore_pl.cli import main
from qstore_pl.support import paths

VARIABLES = (
    paths.CACHE_DIR_ENV,
    paths.LEDGER_ENV,
    paths.DB_PATH_ENV,
    paths.SPOOL_DIR_ENV,
    paths.NUMBA_CACHE_ENV,
)


@pytest.fixture
def xdg(monkeypatch, tmp_path):
    """No qstore variables set; XDG directories under tmp_path."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


@pytest.mark.skipif(sys.platform != "linux", reason="XDG base directories are Linux's")
def test_defaults_follow_xdg(xdg):
    assert paths.cache_dir() == xdg / "cache" / "qstore_pl"
    assert paths.ledger_path() == xdg / "data" / "qstore_pl" / "spending.sqlite"
    assert paths.store_path() == xdg / "data" / "qstore_pl" / "states"
    assert paths.spool_dir() == xdg / "data" / "qstore_pl" / "spool"


def test_every_location_has_its_variable(xdg, monkeypatch):
    for name in VARIABLES:
        monkeypatch.setenv(name, str(xdg / name))
    where = {place.variable: place.path for place in paths.locations()}
    assert where == {name: xdg / name for name in VARIABLES}


def test_the_modules_that_write_use_these_locations(xdg, monkeypatch):
    from qstore_pl.db.open import default_store_path
    from qstore_pl.db.spool import default_spool_path
    from qstore_pl.router.calibration.fit import calibration_path
    from qstore_pl.router.money.ledger import default_ledger_path

    monkeypatch.setenv(paths.SPOOL_DIR_ENV, str(xdg / "spools"))
    monkeypatch.setenv(paths.DB_PATH_ENV, str(xdg / "states"))
    monkeypatch.setenv(paths.LEDGER_ENV, str(xdg / "ledger.sqlite"))
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(xdg / "calibrations"))
    assert default_spool_path("qdrant:x").parent == xdg / "spools"
    assert default_store_path() == xdg / "states"
    assert default_ledger_path() == xdg / "ledger.sqlite"
    assert calibration_path({"cpu": "test"}).parent == xdg / "calibrations"


def test_paths_command_prints_every_location(xdg, monkeypatch, capsys):
    monkeypatch.setenv(paths.SPOOL_DIR_ENV, str(xdg / "my-spool"))
    assert main(["paths"]) == 0
    out = capsys.readouterr().out
    for place in paths.locations():
        assert str(place.path) in out and f"${place.variable}" in out
    assert str(xdg / "my-spool") in out


def test_paths_command_names_this_machines_calibration_file(xdg, capsys):
    from qstore_pl.router.calibration.fit import calibration_path

    assert main(["paths", "--calibration-file"]) == 0
    assert str(calibration_path()) in capsys.readouterr().out


def test_unusable_store_paths_raise_a_qstore_error_naming_the_path(tmp_path):
    from qstore_pl.db import StorePathError, open_store
    from qstore_pl.exceptions import QstoreError

    afile = tmp_path / "afile"
    afile.write_text("")
    for where in (afile, afile / "below", Path("/proc/qstore-nonexistent")):
        with pytest.raises(StorePathError, match="directory you can write to") as info:
            open_store(path=where)
        assert repr(str(where)) in str(info.value)
        assert isinstance(info.value, QstoreError) and isinstance(info.value, OSError)


def test_embedded_store_closes_cleanly_at_exit(tmp_path):
    """qdrant's own __del__ printed `ImportError: sys.meta_path is None` at exit."""
    # An unclosed store in a reference cycle, with the cycle collector off, lives until
    # the interpreter's last collection, after imports have stopped working.
    probe = (
        "import gc\n"
        "import numpy as np\n"
        "from qstore_pl.db import open_store\n"
        "gc.disable()\n"
        f"store = open_store(path={str(tmp_path / 'store')!r})\n"
        "store.add(np.array([1, 0, 0, 0], complex))\n"
        "cycle = [store, open_store(path=None)]\n"
        "cycle.append(cycle)\n"
        "del store, cycle\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0
    assert result.stderr == ""


def test_a_closed_store_can_be_reopened_at_once(tmp_path):
    from qstore_pl.db import open_store

    store = open_store(path=tmp_path)
    store.close()
    store.close()  # closing twice is harmless
    with open_store(path=tmp_path) as again:
        assert again.stats().states == 0
