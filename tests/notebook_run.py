"""Execute a notebook from top to bottom in a fresh kernel with state of its own.

The kernel inherits this process's environment. The suite's spending ledger, caches
and stores are one per test process (``conftest.py``), and pytest-xdist runs several
tests in each process one after another: a notebook that reads the ledger (the
quickstart's cost report, a budget) saw what an earlier test had recorded there (a
rehearsal notebook's charges). Each notebook therefore gets its own ledger, cache,
state store and spool directories.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from qstore_pl.support.paths import CACHE_DIR_ENV, DB_PATH_ENV, LEDGER_ENV, SPOOL_DIR_ENV


def execute_notebook(path: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """``path`` executed (in its own folder), with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    with (
        tempfile.TemporaryDirectory(prefix="qstore-notebook-") as root,
        _environment(
            {
                LEDGER_ENV: os.path.join(root, "spending.sqlite"),
                CACHE_DIR_ENV: os.path.join(root, "cache"),
                DB_PATH_ENV: os.path.join(root, "store"),
                SPOOL_DIR_ENV: os.path.join(root, "spool"),
            }
        ),
    ):
        NotebookClient(notebook, timeout=timeout, kernel_name="python3").execute(
            cwd=str(path.parent)
        )
    return notebook


def printed(notebook: nbformat.NotebookNode, stream: str | None = None) -> str:
    """Everything the cells printed (only ``stream``, e.g. ``"stdout"``, if given)."""
    return "".join(
        out.get("text", "")
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        if stream is None or out.get("name") == stream
    )


@contextmanager
def _environment(values: dict[str, str]):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
