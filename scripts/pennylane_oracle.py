"""Run PennyLane's own test files on ``qstore.router`` next to ``default.qubit``.

PennyLane's workflow and gradient tests build ``default.qubit`` devices. This script
extracts chosen test files from a PennyLane git checkout at a tag, makes a copy in
which those devices are the router, runs both copies with pytest and prints the tests
that fail only on the router, with the first line of each error, grouped by it.

Usage::

    python scripts/pennylane_oracle.py --repo /path/to/pennylane/.git \\
        tests/workflow/interfaces/qnode/test_autograd_qnode.py -k "not slow"
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

# test helpers the files import, besides the files themselves
_SUPPORT = [
    "tests/conftest.py",
    "tests/pytest.ini",
    "tests/helpers",
    "tests/default_qubit_legacy.py",
    "tests/device_shots_to_analytic.py",
    "tests/dummy_debugger.py",
    "tests/gate_data.py",
    "tests/param_shift_dev.py",
]
# pytest-rng's fixture, where that plugin is not installed (PennyLane's conftest
# overrides it and calls the original)
_RNG_STUB = """import pytest


@pytest.fixture
def seed(request):
    return 1234
"""
_DEVICE = re.compile(r"""(\b(?:qp|qml)\.device\(\s*)["']default\.qubit["']""")
_CLASS = re.compile(r"\bDefaultQubit\((?=[^)]*\))")  # a call, not isinstance(x, DefaultQubit)
_FACTORY = """def _device_under_test(*args, **kwargs):
    import pennylane

    return pennylane.device({device!r}, *args, **kwargs)


"""


def extract(repo: str, tag: str, paths: list[str], into: Path, device: str | None) -> None:
    """The files at ``tag`` under ``into``, their devices replaced by ``device``."""
    # git may complain about blobs the mirror lacks elsewhere in the tree; the
    # archive of the paths asked for is complete regardless
    archive = subprocess.run(
        ["git", "--git-dir", repo, "archive", tag, *_SUPPORT, *paths],
        capture_output=True,
        check=False,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    (into / "tests" / "_rng_stub.py").write_text(_RNG_STUB)
    if device is None:
        return
    for path in paths:
        for file in (into / path).rglob("*.py") if (into / path).is_dir() else [into / path]:
            text = _DEVICE.sub(rf'\g<1>"{device}"', file.read_text())
            text = _CLASS.sub("_device_under_test(", text)
            file.write_text(_FACTORY.format(device=device) + text)


def run(root: Path, paths: list[str], extra: list[str]) -> dict[str, str]:
    """Outcome per test id: ``"passed"``, ``"skipped"`` or the first line of its error."""
    report = root / "report.xml"
    rng = [] if importlib.util.find_spec("pytest_rng") else ["-p", "_rng_stub"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *rng,
            f"--junitxml={report}",
            *paths,
            *extra,
        ],
        cwd=root / "tests",
        capture_output=True,
        check=False,
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            outcomes[name] = (
                (problem.get("message") or "").splitlines()[0][:160]
                if problem.get("message")
                else "error"
            )
        else:
            outcomes[name] = "skipped" if case.find("skipped") is not None else "passed"
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="test files or folders, relative to the repo root")
    parser.add_argument("--repo", required=True, help="PennyLane git directory")
    parser.add_argument("--tag", default="v0.45.1", help="PennyLane version (default: v0.45.1)")
    parser.add_argument("--device", default="qstore.router", help="device under test")
    parser.add_argument("-k", default=None, help="pytest -k expression")
    args = parser.parse_args(argv)
    extra = ["-k", args.k] if args.k else []
    relative = [str(Path(f).relative_to("tests")) for f in args.files]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, device in (("reference", None), ("device", args.device)):
            root = Path(tmp) / label
            root.mkdir()
            extract(args.repo, args.tag, args.files, root, device)
            results[label] = run(root, relative, extra)
    reference, device = results["reference"], results["device"]
    only = {
        name: outcome
        for name, outcome in device.items()
        if outcome not in ("passed", "skipped") and reference.get(name) in ("passed", "skipped")
    }
    failing = sum(o not in ("passed", "skipped") for o in device.values())
    failing_reference = sum(o not in ("passed", "skipped") for o in reference.values())
    print(
        f"{len(device)} tests; {failing_reference} fail on default.qubit, {failing} on "
        f"{args.device}, {len(only)} only there"
    )
    causes = collections.defaultdict(list)
    for name, outcome in only.items():
        causes[re.sub(r"0x[0-9a-f]+|\d+\.\d+", "#", outcome)].append(name)
    for cause, names in sorted(causes.items(), key=lambda item: -len(item[1])):
        print(f"\n{len(names):4d}  {cause}")
        for name in names[:3]:
            print(f"      {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
