"""Run PennyLane's own test files on default.qubit and on ``qstore.router`` and compare.

PennyLane's QNode, execute, gradient and qnn tests are an oracle for the router: a test that
passes on default.qubit and fails once its device is switched to ``qstore.router`` is a
router-only failure. This script extracts chosen test files of a PennyLane release from a git
mirror, makes a rewritten copy whose devices are ``qstore.router``, runs pytest on both copies
(one subprocess per file and copy) and writes a report that groups the router-only failures by
cause. Value assertions that fail (``np.allclose`` and friends) are listed apart: they are the
candidates for silently wrong values, which the router must never give.

Examples
--------
Two files, two parallel pytest processes::

    python scripts/pennylane_oracle.py --jobs 2 --out oracle.md \\
        --files tests/workflow/interfaces/qnode/test_autograd_qnode.py \\
                tests/workflow/interfaces/qnode/test_torch_qnode.py

Every file of the default families (QNode, execute, gradients, qnn)::

    python scripts/pennylane_oracle.py --jobs 2 --out oracle.md

PennyLane's code is only extracted into a temporary directory, never into this repository.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = Path("/work/.mirror/PennyLaneAI+pennylane/repo")
DEFAULT_REF = "v0.45.1"
ROUTER = "qstore.router"

# The default families: QNode and execute tests of every interface, gradients, qnn.
DEFAULT_FILES = (
    "tests/workflow/test_qnode.py",
    "tests/workflow/interfaces/qnode/test_autograd_qnode.py",
    "tests/workflow/interfaces/qnode/test_torch_qnode.py",
    "tests/workflow/interfaces/qnode/test_jax_qnode.py",
    "tests/workflow/interfaces/qnode/test_jax_jit_qnode.py",
    "tests/workflow/interfaces/qnode/test_autograd_qnode_shot_vector.py",
    "tests/workflow/interfaces/qnode/test_jax_qnode_shot_vector.py",
    "tests/workflow/interfaces/qnode/test_qnode_integration_all.py",
    "tests/workflow/interfaces/execute/test_execute.py",
    "tests/workflow/interfaces/execute/test_autograd.py",
    "tests/workflow/interfaces/execute/test_torch.py",
    "tests/workflow/interfaces/execute/test_jax.py",
    "tests/workflow/interfaces/execute/test_jax_jit.py",
    "tests/gradients/core/test_adjoint_diff.py",
    "tests/gradients/core/test_gradient_transform.py",
    "tests/gradients/core/test_hadamard_gradient.py",
    "tests/gradients/core/test_jvp.py",
    "tests/gradients/core/test_vjp.py",
    "tests/gradients/core/test_metric_tensor.py",
    "tests/gradients/core/test_adjoint_metric_tensor.py",
    "tests/gradients/core/test_fisher.py",
    "tests/gradients/finite_diff/test_finite_difference.py",
    "tests/gradients/finite_diff/test_spsa_gradient.py",
    "tests/gradients/parameter_shift/test_parameter_shift.py",
    "tests/gradients/parameter_shift/test_parameter_shift_hessian.py",
    "tests/qnn/test_qnn_torch.py",
)

# pytest plugin loaded into every run: one JSON line per test phase, written as the run goes
# (a file that times out still reports what it finished), plus a per-test alarm, because
# pytest-timeout is not installed.
PLUGIN_SOURCE = '''
import json, os, signal, zlib

_OUT = os.environ["QSTORE_ORACLE_RESULTS"]
_TEST_TIMEOUT = int(os.environ.get("QSTORE_ORACLE_TEST_TIMEOUT", "0"))


class OracleTestTimeout(Exception):
    """A single test ran past the oracle's per-test timeout."""


def _alarm(signum, frame):
    raise OracleTestTimeout(f"test ran past {_TEST_TIMEOUT} s")


import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if _TEST_TIMEOUT:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(_TEST_TIMEOUT)
    try:
        yield
    finally:
        if _TEST_TIMEOUT:
            signal.alarm(0)


@pytest.fixture
def seed(request):
    """Stand-in for pytest-rng's ``seed`` (not installed): the same seed in both copies."""
    name = request.node.nodeid.replace("qstore.router", "default.qubit")
    return zlib.crc32(f"{name}{request.config.getini('rng_salt')}".encode())


@pytest.fixture
def rng(seed):
    """Stand-in for pytest-rng's ``rng``."""
    import numpy

    return numpy.random.default_rng(seed)


def pytest_addoption(parser):
    parser.addini("rng_salt", "salt of pytest-rng's seed", default="")


def _failing_line(excinfo, path):
    """Source line of the innermost traceback entry inside the test file."""
    for entry in reversed(excinfo.traceback):
        if str(entry.path) == path:
            try:
                return str(entry.statement).strip().splitlines()[0][:300]
            except Exception:
                return ""
    return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and report.outcome == "passed":
        return
    record = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
              "xfail": hasattr(report, "wasxfail")}
    if call.excinfo is not None and report.outcome != "skipped":
        value = call.excinfo.value
        kind = type(value)
        record["exc_type"] = kind.__name__
        record["exc_module"] = kind.__module__
        text = str(value)
        record["message"] = text if len(text) <= 3000 else text[:2000] + " ... " + text[-1000:]
        record["line"] = _failing_line(call.excinfo, str(item.path))
        record["router_frames"] = any(
            "qstore_pl" in str(entry.path) for entry in call.excinfo.traceback
        )
    with open(_OUT, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\\n")
'''

ROUTER_FACTORY = (
    "def _qstore_router_device(*args, **kwargs):  # inserted by pennylane_oracle.py\n"
    "    import pennylane\n\n"
    f"    return pennylane.device({ROUTER!r}, *args, **kwargs)\n\n\n"
)

# Value comparisons: an AssertionError on such a line is a wrong number, not a wrong type.
VALUE_COMPARISON = re.compile(
    r"allclose|isclose|assert_allclose|array_equal|approx|assert_array|np\.all\(|"
    r"math\.all\(|==\s*-?\d|-?\d\S*\s*==|<\s*tol|atol|rtol"
)

# ... unless the line compares bookkeeping rather than results.
NOT_A_VALUE = re.compile(
    r"call_count|\.called|len\(|\.shape|\bshape\b|isinstance|type\(|repr\(|\.name|tracker"
)


@dataclass
class Outcome:
    """One test's result in one copy (``passed``, ``failed``, ``skipped``, ``xfailed`` ...)."""

    status: str
    exc_type: str = ""
    exc_module: str = ""
    message: str = ""
    line: str = ""
    router_frames: bool = False


@dataclass
class FileRun:
    """What running one test file in one copy gave."""

    path: str
    variant: str
    seconds: float
    returncode: int | None
    timed_out: bool
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def extract_tests(mirror: Path, ref: str, files: list[str], dest: Path) -> None:
    """Extract ``files`` with the conftests and helpers they need from a PennyLane git mirror.

    Parameters
    ----------
    mirror : Path
        Bare git directory of PennyLane.
    ref : str
        Tag or commit, e.g. ``v0.45.1``.
    files : list of str
        Test files, relative to PennyLane's repository root (``tests/...``).
    dest : Path
        Directory that receives ``tests/``.
    """
    listing = subprocess.run(
        ["git", f"--git-dir={mirror}", "ls-tree", "-r", "--name-only", ref, "tests"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    known = set(listing)
    missing = [f for f in files if f not in known]
    if missing:
        raise SystemExit(f"not in PennyLane {ref}: {', '.join(missing)} (see `git ls-tree {ref}`)")
    wanted = set(files)
    for path in listing:
        parent = str(Path(path).parent)
        top_level_helper = parent == "tests" and path.endswith((".py", ".ini"))
        conftest_above = Path(path).name == "conftest.py" and any(
            f.startswith(parent + "/") for f in files
        )
        if top_level_helper or conftest_above or path.startswith("tests/helpers/"):
            wanted.add(path)
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", f"--git-dir={mirror}", "archive", ref, "--", *sorted(wanted)],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def rewrite_to_router(source: str) -> str:
    """Switch the default.qubit devices a PennyLane test module builds to ``qstore.router``.

    ``"default.qubit"`` string literals (device names in ``qml.device`` calls and in
    parametrize lists, and the comparisons that branch on them) become ``"qstore.router"``;
    ``DefaultQubit(...)`` constructions call a small factory inserted at the top of the module.
    Subclasses of ``DefaultQubit`` and other devices are left alone.

    Parameters
    ----------
    source : str
        The module's text.

    Returns
    -------
    str
        The rewritten text (unchanged if it names no default.qubit device).
    """
    rewritten = re.sub(r"""(["'])default\.qubit\1""", f'"{ROUTER}"', source)
    rewritten, constructions = re.subn(
        r"(?:\b[A-Za-z_][\w.]*\.)?\bDefaultQubit\(",
        "_qstore_router_device(",
        rewritten,
    )
    if constructions:
        match = re.search(r"^(?:import |from (?!__future__))", rewritten, flags=re.MULTILINE)
        at = match.start() if match else 0
        rewritten = rewritten[:at] + ROUTER_FACTORY + rewritten[at:]
    return rewritten


def make_router_copy(original: Path, router: Path, files: list[str]) -> dict[str, int]:
    """Copy the extracted tests and rewrite the chosen files and their conftests.

    Returns
    -------
    dict
        Rewritten path -> number of changed lines.
    """
    shutil.copytree(original, router)
    targets = set(files)
    for conftest in original.rglob("conftest.py"):
        targets.add(str(conftest.relative_to(original)))
    changes = {}
    for relative in sorted(targets):
        path = router / relative
        before = path.read_text(encoding="utf-8")
        after = rewrite_to_router(before)
        if after != before:
            path.write_text(after, encoding="utf-8")
            diff = difflib.unified_diff(before.splitlines(), after.splitlines(), n=0)
            changes[relative] = sum(line.startswith("-") for line in list(diff)[2:])
    return changes


def run_file(
    root: Path, variant: str, relative: str, k: str | None, timeout: int, test_timeout: int
) -> FileRun:
    """Run pytest on one file of one copy in its own process group, bounded by ``timeout``."""
    tag = relative.replace("/", "__")
    results = root / f"{tag}.jsonl"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root / "tests"), str(REPO_ROOT), env.get("PYTHONPATH", "")]
    )
    env["QSTORE_ORACLE_RESULTS"] = str(results)
    env["QSTORE_ORACLE_TEST_TIMEOUT"] = str(test_timeout)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "_qstore_oracle_plugin",
        "-q",
        "-rN",
        "--tb=no",
        f"--junitxml={root / (tag + '.xml')}",
        relative.removeprefix("tests/"),
    ]
    if k:
        command += ["-k", k]
    started = time.monotonic()
    with open(root / f"{tag}.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=root / "tests",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    run = FileRun(relative, variant, time.monotonic() - started, process.returncode, timed_out)
    summary = {"seconds": run.seconds, "returncode": run.returncode, "timed_out": timed_out}
    (root / f"{tag}.run.json").write_text(json.dumps(summary), encoding="utf-8")
    run.outcomes = read_outcomes(results, relative)
    return run


def load_runs(workdir: Path) -> tuple[list[str], dict[str, int], list[FileRun]]:
    """Read back the files, rewrite counts and runs that an earlier run left in ``workdir``."""
    runs, files, changes = [], [], {}
    for summary in sorted((workdir / "router").glob("*.run.json")):
        relative = summary.name.removesuffix(".run.json").replace("__", "/")
        files.append(relative)
        before = (workdir / "default.qubit" / relative).read_text(encoding="utf-8")
        after = (workdir / "router" / relative).read_text(encoding="utf-8")
        diff = difflib.unified_diff(before.splitlines(), after.splitlines(), n=0)
        changes[relative] = sum(line.startswith("-") for line in list(diff)[2:])
        for folder, variant in (("default.qubit", "default.qubit"), ("router", ROUTER)):
            root = workdir / folder
            tag = relative.replace("/", "__")
            info = json.loads((root / f"{tag}.run.json").read_text(encoding="utf-8"))
            run = FileRun(relative, variant, info["seconds"], info["returncode"], info["timed_out"])
            run.outcomes = read_outcomes(root / f"{tag}.jsonl", relative)
            runs.append(run)
    return files, changes, runs


def read_outcomes(results: Path, relative: str) -> dict[str, Outcome]:
    """Fold the plugin's per-phase records into one outcome per test id."""
    outcomes: dict[str, Outcome] = {}
    if not results.exists():
        return outcomes
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        test_id = f"tests/{record['nodeid']}" if not record["nodeid"].startswith("tests/") else ""
        test_id = test_id or record["nodeid"]
        status = record["outcome"]
        if record["xfail"]:
            status = "xfailed" if status == "skipped" else "xpassed"
        if record["when"] != "call" and status == "failed":
            status = "error"
        previous = outcomes.get(test_id)
        if previous and previous.status in ("failed", "error"):
            continue  # the first failure is the cause; a teardown error after it is noise
        outcomes[test_id] = Outcome(
            status,
            record.get("exc_type", ""),
            record.get("exc_module", ""),
            record.get("message", ""),
            record.get("line", ""),
            record.get("router_frames", False),
        )
    return outcomes


def normalise(message: str) -> str:
    """First line of an exception message with numbers, addresses and arrays folded."""
    lines = [line for line in message.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if "Traceback (most recent call last)" in message:  # a callback's error: its last line says why
        first = f"{first.split(':')[0]}: ... {lines[-1]}"
    first = re.sub(r"0x[0-9a-fA-F]+", "0x…", first)
    first = re.sub(r"wires=\w+", "wires=…", first)
    first = re.sub(r"\[[^\[\]]{0,400}\]", "[…]", first)
    first = re.sub(r"tensor\(.*?\)", "tensor(…)", first)
    first = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", first)
    return first.strip()[:200]


def classify(outcome: Outcome) -> str:
    """``value`` (a compared number was wrong), ``assertion`` (another property: a call count,
    a shape, a type, a repr), ``no-raise``, ``router-error`` or ``other-error``."""
    if outcome.exc_type == "AssertionError":
        if NOT_A_VALUE.search(outcome.line):
            return "assertion"
        if VALUE_COMPARISON.search(outcome.line) or "Not equal to tolerance" in outcome.message:
            return "value"
        return "assertion"
    if outcome.exc_type == "Failed" and "DID NOT" in outcome.message:
        return "no-raise"
    if outcome.exc_module.startswith("qstore_pl") or outcome.router_frames:
        return "router-error"
    return "other-error"


# Causes that the router-derivative fixes of issue 16 (wt-derivs) target, as (label, pattern
# on the exception message, pattern on the test id, kinds the id pattern applies to).
DERIVS_FIX_TARGETS = (
    ("backprop routing", r"backprop", None, ()),
    (
        "higher-order / forward-mode derivatives",
        r"forward-mode|custom_vjp",
        # nested differentiation: Hessians, and derivatives of gradient transforms' outputs
        r"hessian|second_deriv|jacfwd|max_diff|diffabilit|differentiab",
        ("value", "assertion", "router-error", "other-error"),
    ),
    ("finite-diff precision", None, r"finite[-_]diff", ("value",)),
    (
        "trainable Hamiltonian coefficients",
        None,
        r"hamiltonians?_trainable|trainable_hamiltonian|coeff",
        ("value", "assertion", "router-error", "other-error"),
    ),
)


def derivs_fix_target(test_id: str, outcome: Outcome, kind: str) -> str:
    """Name the wt-derivs fix that probably covers a failure, or ``""`` (a heuristic)."""
    name = test_id.rsplit("/", 1)[-1]
    for label, message_pattern, id_pattern, kinds in DERIVS_FIX_TARGETS:
        if message_pattern and re.search(message_pattern, outcome.message, re.I):
            return label
        if id_pattern and kind in kinds and re.search(id_pattern, name, re.I):
            return label
    return ""


def compare(original: list[FileRun], router: list[FileRun]) -> dict:
    """Pair the two copies' outcomes per test id and collect the router-only failures."""
    base = {t: o for run in original for t, o in run.outcomes.items()}
    # parametrize ids built from the device name differ only by that name
    mine = {
        t.replace(ROUTER, "default.qubit"): o for run in router for t, o in run.outcomes.items()
    }
    both_pass, router_only, router_skipped = [], [], []
    for test_id, reference in base.items():
        if reference.status != "passed":
            continue
        outcome = mine.get(test_id)
        if outcome is None:
            router_only.append((test_id, Outcome("missing", message="not run on the router")))
        elif outcome.status == "passed":
            both_pass.append(test_id)
        elif outcome.status == "skipped":
            router_skipped.append(test_id)
        else:
            router_only.append((test_id, outcome))
    return {
        "base": base,
        "router": mine,
        "both_pass": both_pass,
        "router_only": router_only,
        "router_skipped": router_skipped,
    }


def test_function(test_id: str) -> str:
    """A test id without its parametrisation."""
    return test_id.split("[", 1)[0]


def render_report(args, files, changes, original, router, result) -> str:
    """The markdown report."""
    lines = ["# PennyLane test files on default.qubit vs qstore.router", ""]
    lines += [f"Command: `{' '.join(args.argv)}`", f"PennyLane tests: {args.ref}", ""]
    lines += [
        "Test ids name the device as the default.qubit copy does. `[label]` marks a cause that",
        "the router-derivative fixes of issue 16 target (a heuristic on the test id and message).",
        "",
    ]
    base, router_outcomes = result["base"], result["router"]
    counts = defaultdict(int)
    for outcome in base.values():
        counts[outcome.status] += 1
    lines += [
        "| | count |",
        "|---|---|",
        f"| tests run on default.qubit | {len(base)} ({dict(sorted(counts.items()))}) |",
        f"| tests run on qstore.router | {len(router_outcomes)} |",
        f"| pass on both | {len(result['both_pass'])} |",
        f"| router-only failures | {len(result['router_only'])} |",
        f"| pass on default.qubit, skipped on router | {len(result['router_skipped'])} |",
        "",
        "## Files",
        "",
        "| file | lines rewritten | default.qubit s | router s | note |",
        "|---|---|---|---|---|",
    ]
    by_path = {(run.variant, run.path): run for run in original + router}
    for path in files:
        notes = []
        for variant in ("default.qubit", ROUTER):
            run = by_path[(variant, path)]
            if run.timed_out:
                notes.append(f"{variant} TIMED OUT (partial results)")
            elif not run.outcomes:
                notes.append(f"{variant} collected nothing (rc {run.returncode}, see log)")
        base_run, router_run = by_path[("default.qubit", path)], by_path[(ROUTER, path)]
        lines.append(
            f"| {path} | {changes.get(path, 0)} | {base_run.seconds:.0f} | "
            f"{router_run.seconds:.0f} | {'; '.join(notes)} |"
        )
    groups: dict[tuple, list] = defaultdict(list)
    for test_id, outcome in result["router_only"]:
        kind = "missing" if outcome.status == "missing" else classify(outcome)
        target = derivs_fix_target(test_id, outcome, kind)
        key = (kind, target, outcome.exc_type, normalise(outcome.message))
        if kind == "value":
            key = (kind, target, outcome.exc_type, test_function(test_id))
        groups[key].append((test_id, outcome))
    titles = {
        "value": "Value assertions (candidates for SILENT WRONG VALUES)",
        "no-raise": "Expected exception or warning not raised",
        "assertion": "Other assertions (types, shapes, names, call counts)",
        "router-error": "Errors raised in qstore_pl (refusals and crashes inside the router)",
        "other-error": "Other exceptions (raised outside qstore_pl)",
        "missing": "Tests that did not run on the router (timeout or collection)",
    }
    for kind, title in titles.items():
        for targeted in (False, True):
            selected = sorted(
                (k for k in groups if k[0] == kind and bool(k[1]) == targeted),
                key=lambda k: -len(groups[k]),
            )
            if not selected:
                continue
            total = sum(len(groups[k]) for k in selected)
            suffix = " -- targeted by the wt-derivs fixes" if targeted else ""
            lines += ["", f"## {title}{suffix}: {total}", ""]
            for key in selected:
                members = groups[key]
                test_id, outcome = members[0]
                label = f" [{key[1]}]" if key[1] else ""
                what = key[3] if kind != "value" else f"{normalise(outcome.message)}"
                lines.append(f"- **{len(members)}**{label} `{key[2] or outcome.status}`: {what}")
                lines.append(f"  - e.g. `{test_id}`")
                if outcome.line:
                    lines.append(f"  - line: `{outcome.line}`")
                if kind == "value":
                    lines += [f"  - `{member}`" for member, _ in members[1:]]
    if result["router_skipped"]:
        lines += ["", "## Passed on default.qubit, skipped on the router", ""]
        lines += [f"- `{t}`" for t in sorted(result["router_skipped"])]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--files",
        nargs="+",
        default=list(DEFAULT_FILES),
        help="PennyLane test files, relative to its repository (default: QNode, execute, "
        "gradients and qnn families, %(default)s)",
    )
    parser.add_argument("--k", help="pytest -k expression applied to every file (default: none)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="pytest processes at once (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=int, default=1200, help="seconds per file and copy (default: %(default)s)"
    )
    parser.add_argument(
        "--test-timeout",
        type=int,
        default=120,
        help="seconds per test, 0 for none (default: %(default)s)",
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        default=DEFAULT_MIRROR,
        help="bare git directory of PennyLane (default: %(default)s)",
    )
    parser.add_argument(
        "--ref", default=DEFAULT_REF, help="PennyLane tag or commit (default: %(default)s)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the copies, logs and junit files go (default: a new temporary directory, "
        "kept and printed)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("pennylane_oracle.md"), help="report (%(default)s)"
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        nargs="+",
        metavar="WORKDIR",
        help="run nothing: rebuild the report from the results earlier runs left in these "
        "work directories (merged)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.timeout < 1 or args.test_timeout < 0:
        parser.error("--jobs and --timeout must be at least 1, --test-timeout at least 0")
    args.argv = ["python", "scripts/pennylane_oracle.py", *argv]
    return args


def main(argv: list[str] | None = None) -> int:
    """Extract, rewrite, run both copies, compare and write the report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report_from:
        files, changes, runs = [], {}, []
        for workdir in args.report_from:
            more_files, more_changes, more_runs = load_runs(workdir)
            files, runs = files + more_files, runs + more_runs
            changes.update(more_changes)
        return write_report(args, files, changes, runs, ", ".join(map(str, args.report_from)))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pennylane_oracle_"))
    original, router = workdir / "default.qubit", workdir / "router"
    for root in (original, router):
        if root.exists():
            shutil.rmtree(root)
    extract_tests(args.mirror, args.ref, args.files, original)
    (original / "tests" / "_qstore_oracle_plugin.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    changes = make_router_copy(original, router, args.files)
    unchanged = [f for f in args.files if f not in changes]
    if unchanged:
        print(f"note: no default.qubit device to rewrite in {', '.join(unchanged)}")
    jobs = [
        (root, variant, f)
        for f in args.files
        for root, variant in ((original, "default.qubit"), (router, ROUTER))
    ]

    def run(job):
        root, variant, relative = job
        done = run_file(root, variant, relative, args.k, args.timeout, args.test_timeout)
        print(
            f"{variant:14s} {relative}: {len(done.outcomes)} tests, {done.seconds:.0f} s"
            + (" TIMED OUT" if done.timed_out else ""),
            flush=True,
        )
        return done

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run, jobs))
    return write_report(args, args.files, changes, runs, str(workdir))


def write_report(args, files, changes, runs, workdir: str) -> int:
    """Compare the runs, write the report and print the counts."""
    base_runs = [r for r in runs if r.variant == "default.qubit"]
    router_runs = [r for r in runs if r.variant == ROUTER]
    result = compare(base_runs, router_runs)
    args.out.write_text(
        render_report(args, files, changes, base_runs, router_runs, result), encoding="utf-8"
    )
    print(
        f"{len(result['base'])} tests on default.qubit, {len(result['both_pass'])} pass on both, "
        f"{len(result['router_only'])} router-only failures; report: {args.out}; work: {workdir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
