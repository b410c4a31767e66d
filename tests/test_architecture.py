"""The package's layering, checked as facts on the source (``ast``; nothing is imported).

Every ``import`` counts, at module level or inside a function, except those under
``if TYPE_CHECKING:``. Layers, lowest first; a module imports its own top-level
package or a lower layer, never a higher one or a neighbour on its own layer:

-1. ``base_error``: the root exception, importing nothing (below ``exceptions``)
0. ``exceptions``, ``callbacks``, ``_moved``: the public errors and callback protocol
1. ``support``: paths, bounds, secrets, threads, atomic files, progress
2. ``templates``, ``circuits``, ``interfaces``: circuits and framework bridges
3. ``devices``: the leaf devices
4. ``router``, ``db``: the router over the devices; the state database
5. ``datasets``, ``layers``, ``monitoring``: built on circuits, templates, devices
6. ``keras``, ``torch``, ``tensorboard``: framework layers and logging
7. ``cli``: the ``qstore-pl`` command
"""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qstore_pl"

LAYERS = {
    "base_error": -1,
    "exceptions": 0,
    "callbacks": 0,
    "_moved": 0,
    "support": 1,
    "templates": 2,
    "circuits": 2,
    "interfaces": 2,
    "transforms": 2,
    "devices": 3,
    "router": 4,
    "db": 4,
    "datasets": 5,
    "layers": 5,
    "keras": 6,
    "torch": 6,
    "jax": 6,
    "tensorboard": 6,
    "model": 7,
    "cli": 8,
}


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _resolve(name: str) -> str | None:
    """The qstore_pl module ``name`` refers to (a module, or the package holding it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a.b import c` imports module a.b.c when there is one, else names of a.b
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else base for t in targets]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "qstore_pl":
                resolved = _resolve(target)
                if resolved and resolved != module:
                    found.add(resolved)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[1]


def test_every_top_level_package_and_module_has_a_layer():
    tops = {_top(m) for m in MODULES if m != "qstore_pl"}
    assert tops == set(LAYERS), "add the new top-level name to LAYERS in this file"


def test_no_import_circles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    circles = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert circles == []


def test_imports_flow_down_the_layers():
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module != "qstore_pl"
        for target in targets
        if target != "qstore_pl"
        and _top(target) != _top(module)
        and LAYERS[_top(target)] >= LAYERS[_top(module)]
    )
    assert upward == []


def test_devices_never_import_the_router_or_anything_above():
    allowed = {name for name, layer in LAYERS.items() if layer <= LAYERS["devices"]}
    found = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.startswith("qstore_pl.devices")
        for target in targets
        if _top(target) not in allowed
    )
    assert found == []


def _entry_point_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plugins = project["entry-points"]["pennylane.plugins"].values()
    return {value.partition(":")[0] for value in plugins}


def test_no_module_in_devices_serves_only_the_router():
    """A device-side module that only the router imports is a router internal."""
    entry_points = _entry_point_modules()
    importers: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        for target in targets:
            importers.setdefault(target, set()).add(module)
    only_router = sorted(
        module
        for module in MODULES
        if module.startswith("qstore_pl.devices")
        and module not in entry_points
        and importers.get(module)
        and all(_top(user) == "router" for user in importers[module])
    )
    assert only_router == []


def test_the_entry_points_name_the_new_homes():
    from qstore_pl._moved import MOVED_MODULES

    for module in _entry_point_modules():
        assert module in MODULES and module not in MOVED_MODULES


def test_every_moved_path_points_at_a_module_and_no_file_is_left_at_the_old_one():
    from qstore_pl._moved import MOVED_MODULES

    for old, new in MOVED_MODULES.items():
        assert new in MODULES, f"{old} -> {new}: no such module"
        assert old not in MODULES, f"{old} is both moved and present"


def _python_sources() -> list[tuple[str, str]]:
    """(name, source) of every Python file and notebook code cell in the repository."""
    sources = []
    for folder in ("qstore_pl", "tests", "benchmarks", "scripts", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            sources.append((str(path.relative_to(ROOT)), path.read_text()))
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                code = "".join(cell["source"])
                code = "\n".join(
                    line for line in code.splitlines() if not line.startswith(("%", "!"))
                )
                sources.append((f"{path.relative_to(ROOT)}[{i}]", code))
    return sources


def test_nothing_in_the_repository_uses_an_old_path():
    """The old paths answer with a DeprecationWarning; our own code never asks them."""
    from qstore_pl._moved import MOVED_MODULES

    # packages that were modules: their old names answer through a module __getattr__
    moved_names = {"qstore_pl.circuits": {"CircuitDataset", "circuits_to_tf_dataset"}}
    used = []
    for name, source in _python_sources():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                used += [(name, a.name) for a in node.names if a.name in MOVED_MODULES]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if (
                        node.module in MOVED_MODULES
                        or full in MOVED_MODULES
                        or alias.name in moved_names.get(node.module, ())
                        or (node.module == "qstore_pl.router.calibration" and full not in MODULES)
                    ):
                        used.append((name, full))
    assert used == []


def layout_tree() -> str:
    """The package tree as the README draws it: each package, then its modules."""
    lines = []

    def walk(folder: Path, depth: int) -> None:
        modules = sorted(
            p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__")
        )
        label = "  " * depth + folder.name + "/"
        lines.append(f"{label:<24}{' · '.join(modules)}".rstrip())
        for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").exists()):
            walk(sub, depth + 1)

    walk(PACKAGE, 0)
    return "\n".join(lines)


def test_the_readme_draws_the_layout_as_it_is():
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- layout: tests/test_architecture.py -->\n```\n", "\n```"
    assert begin in readme, "the README's architecture section lost its layout tree"
    drawn = readme.split(begin, 1)[1].split(end, 1)[0]
    assert drawn == layout_tree(), "paste this into the README:\n" + layout_tree()


def test_the_readme_lists_every_moved_module():
    from qstore_pl._moved import MOVED_MODULES

    readme = (ROOT / "README.md").read_text()
    missing = [old for old, new in MOVED_MODULES.items() if f"| `{old}` | `{new}` |" not in readme]
    assert missing == []
