"""The README's Python examples run as written.

Each ```python block runs in a fresh namespace (a block must work with its own imports
only, as a reader would paste it) with a temporary working directory, after the YAML
blocks the README names as files (a first line ``# router.yaml``) were written there.
Cloud services are the repository's local servers: the IonQ examples talk to the
offline IonQ emulator through ``QSTORE_IONQ_URL``. Every file the examples write (state
store, spool, ledger, calibration cache) goes to the temporary directory. A block
preceded by ``<!-- not-run: reason -->`` is skipped, for what cannot run here at all.

The blocks run in this process rather than one interpreter each: a fresh interpreter
spends 5-8 s of CPU importing PennyLane and a framework per block, and qstore_pl reads
its environment variables when it uses them, not when imported. What a separate
interpreter would add, whether a block leans on an import another block made, is what
the fresh namespace per block already catches.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from markdown_blocks import CodeBlock, code_blocks  # noqa: E402

from qstore_pl.devices.ionq.emulator import IonQEmulator  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = code_blocks(README)
PYTHON = [b for b in BLOCKS if b.language == "python"]


def _named_files(blocks: list[CodeBlock]) -> dict[str, str]:
    """YAML/TOML blocks whose first line is a comment naming a file: ``# router.yaml``."""
    files = {}
    for block in blocks:
        first = block.code.splitlines()[0] if block.code.strip() else ""
        if block.language in ("yaml", "toml") and first.startswith("# "):
            name = first[2:].split()[0]
            if "." in name and "/" not in name:
                files[name] = block.code
    return files


@pytest.fixture(scope="module")
def emulator():
    with IonQEmulator(seed=7) as server:
        yield server


def test_the_readme_has_examples_and_named_config_files():
    assert len(PYTHON) >= 5
    assert "router.yaml" in _named_files(BLOCKS)


def test_no_example_passes_config_to_qml_device():
    """``qml.device`` keeps ``config=`` for PennyLane's own file; the router's is
    ``router_config=``."""
    for block in PYTHON:
        code = "\n".join(line.split("#")[0] for line in block.code.splitlines())
        found = re.search(r"qml\.device\([^)]*\bconfig=", code)
        assert not found, f"README line {block.line}: write router_config= instead"


def _close(namespace: dict) -> None:
    """Stop what an example left running (recorder threads, open stores)."""
    from qstore_pl.db import StateRecorder, StateStore

    values = list(namespace.values())
    for value in values:
        if isinstance(value, StateRecorder):
            value.close()
    for value in values:
        if isinstance(value, StateStore):
            value.close()


@pytest.mark.parametrize("block", PYTHON, ids=[f"line{b.line}" for b in PYTHON])
def test_readme_example_runs(block, tmp_path, monkeypatch, emulator):
    if block.directive and block.directive[0] == "not-run":
        pytest.skip(f"README line {block.line}: {block.directive[1]}")
    for name, text in _named_files(BLOCKS).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "QSTORE_CACHE_DIR": tmp_path / "cache",
        "QSTORE_LEDGER": tmp_path / "spending.sqlite",
        "QSTORE_DB_PATH": tmp_path / "states",
        "QSTORE_SPOOL_DIR": tmp_path / "spool",
        "QSTORE_CALIBRATION": "off",
        "QSTORE_IONQ_URL": emulator.url,
        "IONQ_API_KEY": "readme-example-key",
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("PENNYLANE_IONQ_API_KEY", raising=False)
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(block.code, f"README.md, block at line {block.line}", "exec"), namespace)
    finally:
        _close(namespace)
