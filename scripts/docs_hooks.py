"""MkDocs hooks: the API reference and the reference tables, generated from the code.

Why generated: module paths change (issue 13 moves the router into one package), and a
hand-written list of ``::: module`` blocks would go stale silently. At build time this
walks ``qstore_pl`` on disk (no import) and adds one reference page per package to the
build (nothing is written to ``docs/``), listing every public module in it, so a moved
module moves in the docs by itself.

Hand-written pages reuse the README's prose instead of copying it:
``<!-- readme: Heading -->`` on a line of its own is replaced by the body of the README
section whose heading starts with ``Heading`` (its subsections become ``##``). Two
checks keep the reference tables whole:

- the README's environment-variable table (between its ``ENVIRONMENT VARIABLES``
  markers, the one list of variables) must name every variable the package reads;
- a page marked ``<!-- config-keys -->`` must name, as ```key```, every key the config
  loader accepts (its ``_TOP_LEVEL_KEYS`` and ``_BACKEND_KEYS``, found wherever the
  loader lives).

A mismatch stops the build (``PluginError``), so ``mkdocs build --strict`` fails when
the docs fall behind the code.
"""

from __future__ import annotations

import ast
import pkgutil
import re
from pathlib import Path

from markdown_blocks import section, shift_headings
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "qstore_pl"
README = ROOT / "README.md"
ENV_START = "<!-- ENVIRONMENT VARIABLES"
ENV_END = "<!-- END OF ENVIRONMENT VARIABLES -->"
_INCLUDE = re.compile(r"^<!-- readme: (.+?) -->$", re.MULTILINE)
CONFIG_KEYS_MARKER = "<!-- config-keys -->"
#: Names of the config loader's tuples of accepted keys.
CONFIG_KEY_TUPLES = ("_TOP_LEVEL_KEYS", "_BACKEND_KEYS")
#: An environment variable's name as the README's table writes it: upper case in
#: backticks (not every name has an underscore: PYTHONPATH).
_LISTED_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
#: Our own variables, wherever the source mentions them.
_OUR_ENV_NAME = re.compile(r"\bQSTORE_[A-Z0-9_]+\b")


def _public(name: str) -> bool:
    return not name.startswith("_")


def packages(root: Path = ROOT / PACKAGE, dotted: str = PACKAGE) -> dict[str, list[str]]:
    """Every package under ``root`` and its public modules, read from the file tree.

    Parameters
    ----------
    root : Path
        Directory of the package.
    dotted : str
        Its dotted import name.

    Returns
    -------
    dict[str, list[str]]
        Dotted package name -> dotted names of its public modules (not subpackages),
        sorted; packages in depth-first order.
    """
    found: dict[str, list[str]] = {dotted: []}
    for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda m: m.name):
        if not _public(info.name):
            continue
        if info.ispkg:
            found.update(packages(root / info.name, f"{dotted}.{info.name}"))
        else:
            found[dotted].append(f"{dotted}.{info.name}")
    return found


def _autodoc(name: str, **options: object) -> list[str]:
    """A mkdocstrings ``::: name`` block with its options."""
    lines = [f"::: {name}"]
    if options:
        lines += ["    options:", *(f"      {key}: {value}" for key, value in options.items())]
    return [*lines, ""]


def reference_pages() -> dict[str, str]:
    """Markdown of each reference page, by its path under ``docs/``: one per package."""
    pages = {}
    index = [
        "# API reference",
        "",
        "Generated from the docstrings at build time, one page per package "
        "(`scripts/docs_hooks.py` walks the source tree, so the pages follow the "
        "modules wherever they live).",
        "",
    ]
    for package, modules in packages().items():
        indent = "    " * package.count(".")
        index.append(f"{indent}- [`{package}`]({package}.md)")
        lines = [f"# `{package}`", "", *_autodoc(package, members="false")]
        for module in modules:
            lines += [f"## `{module}`", "", *_autodoc(module, heading_level=3)]
        pages[f"reference/{package}.md"] = "\n".join(lines)
    pages["reference/index.md"] = "\n".join(index) + "\n"
    return pages


def environment_table(readme: Path = README) -> str:
    """The README's table of environment variables, checked against the source."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(ENV_START), text.find(ENV_END)
    if start < 0 or end < start:
        raise PluginError(f"{readme}: the {ENV_START} ... {ENV_END} markers are missing")
    block = text[text.index("\n", start) + 1 : end].strip()
    listed = set(_LISTED_NAME.findall(block))
    read = variables_read()
    missing = sorted(read - listed)
    if missing:
        raise PluginError(
            f"environment variables the package mentions but the README's table does not "
            f"list: {', '.join(missing)}; add a row each between the {ENV_START} markers"
        )
    return block


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def variables_read(root: Path = ROOT / PACKAGE) -> set[str]:
    """Environment variables the package's source reads, as far as the source shows.

    Every ``QSTORE_*`` name it mentions, every string assigned to a name ending in
    ``_ENV``, and every literal name given to ``environ.get``, ``getenv`` or
    ``environ[...]``.
    """
    found: set[str] = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(_OUR_ENV_NAME.findall(text))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Assign) and _literal(node.value):
                if any(isinstance(t, ast.Name) and t.id.endswith("_ENV") for t in node.targets):
                    found.add(node.value.value)
            elif isinstance(node, ast.Call) and node.args and _literal(node.args[0]):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = getattr(func, "value", None)
                if name == "getenv" or (
                    name == "get" and isinstance(owner, ast.Attribute) and owner.attr == "environ"
                ):
                    found.add(node.args[0].value)
            elif isinstance(node, ast.Subscript) and _literal(node.slice):
                value = node.value
                if isinstance(value, ast.Attribute) and value.attr == "environ":
                    found.add(node.slice.value)
    return found


def config_keys(root: Path = ROOT / PACKAGE) -> set[str]:
    """Every key the router's config loader accepts, read from its source."""
    keys: set[str] = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in CONFIG_KEY_TUPLES for t in node.targets
            ):
                keys |= set(ast.literal_eval(node.value))
    if not keys:
        raise PluginError(f"no {' or '.join(CONFIG_KEY_TUPLES)} found under {root}")
    return keys


def readme_section(heading: str) -> str:
    """The README section under ``heading``, ready to stand in a page of ``docs/``."""
    try:
        level, body = section(README.read_text(encoding="utf-8"), heading)
    except KeyError as err:
        raise PluginError(f"README.md has no section {heading!r} to include") from err
    # the README links files under docs/ from the repository root
    return shift_headings(body, 1 - level).replace("](docs/", "](")


def on_files(files, config):
    """Add the generated reference pages to the build (nothing is written to ``docs/``)."""
    environment_table()  # fails the build when the table misses a variable
    for path, content in reference_pages().items():
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    """Include README sections; check that every config key is documented."""
    markdown = _INCLUDE.sub(lambda m: readme_section(m.group(1)), markdown)
    if CONFIG_KEYS_MARKER in markdown:
        missing = sorted(k for k in config_keys() if f"`{k}`" not in markdown)
        if missing:
            raise PluginError(
                f"{page.file.src_path}: config keys the loader accepts but the page does "
                f"not document: {', '.join(missing)}"
            )
    return markdown
