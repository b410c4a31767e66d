"""The checks that keep the docs in step with the code (scripts/docs_hooks.py).

``mkdocs build --strict`` (scripts/docs.sh, run by scripts/test.sh) fails when the
README's environment table misses a variable the package reads, when a page marked
``<!-- config-keys -->`` misses a key the config loader accepts, or when the reference
leaves a module out. These tests show each check catches what it is for.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
pytest.importorskip("mkdocs", reason="the docs extra is not installed")
import docs_hooks  # noqa: E402
from markdown_blocks import code_blocks, section, shift_headings  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402

from qstore_pl.support import paths  # noqa: E402
from qstore_pl.support.limits import Limits  # noqa: E402


def test_every_variable_the_package_reads_is_in_the_readme_table():
    read = docs_hooks.variables_read()
    # the scan finds variables read through constants and literals alike
    assert {paths.CACHE_DIR_ENV, paths.NUMBA_CACHE_ENV, "QDRANT_URL", "QSTORE_THREADS"} <= read
    assert {Limits.env_var(f.name) for f in fields(Limits)} <= read
    table = docs_hooks.environment_table()
    assert all(f"`{name}`" in table for name in read)


def test_a_variable_missing_from_the_table_stops_the_build(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(text.replace("| `QSTORE_THREADS` |", "| `QSTORE_THREADZ` |"), "utf-8")
    with pytest.raises(PluginError, match="QSTORE_THREADS"):
        docs_hooks.environment_table(readme)


def test_config_keys_are_the_loaders_and_the_router_page_names_them(tmp_path):
    from qstore_pl.exceptions import ConfigError
    from qstore_pl.router.config import load_config

    keys = docs_hooks.config_keys()
    assert {"backends", "budget", "fallback_chain", "use_for", "max_queue_seconds"} <= keys
    with pytest.raises(ConfigError, match="bogus"):
        load_config({"bogus_key": 1})  # a key outside the scanned set is refused
    page = (ROOT / "docs" / "router.md").read_text(encoding="utf-8")
    assert docs_hooks.CONFIG_KEYS_MARKER in page
    assert all(f"`{key}`" in page for key in keys)


def test_the_reference_has_a_page_per_package_naming_every_public_module():
    pages = docs_hooks.reference_pages()
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "qstore_pl").rglob("*.py")
        if not any(part.startswith("_") for part in p.relative_to(ROOT).parts)
    }
    text = "\n".join(pages.values())
    assert all(f"::: {module}\n" in text for module in modules)
    assert "reference/index.md" in pages


def test_readme_sections_are_found_outside_code_blocks():
    text = "# Top\n\n## A\n\n```yaml\n# not a heading\n```\n\n### A.1\nx\n\n## B\ny\n"
    level, body = section(text, "A")
    assert level == 2
    assert "# not a heading" in body and "### A.1" in body and "## B" not in body
    assert "## A.1" in shift_headings(body, -1)
    assert [b.language for b in code_blocks(text)] == ["yaml"]
