"""Run PennyLane's device conformance suite on the qstore devices and print the counts.

Every (device, shots) pair runs the whole suite, as ``pl-device-test --device=D --shots=S``
would. Instead of one ``pl-device-test`` per pair (an interpreter that imports PennyLane
only to start pytest, then a pytest that imports and collects the suite again), the
pairs are split over one pytest process per core; each process collects the suite once
and parametrizes it over its pairs, and its plugin counts the outcomes per pair. Exits
non-zero if any pair has a failure or an error, or passes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

#: (device, shots); "None" is analytic mode
RUNS = [
    ("qstore.router", "None"),
    ("qstore.router", "10000"),
    ("qstore.qsim", "None"),
    ("qstore.qsim", "10000"),
    ("qstore.batched", "None"),
    ("qstore.batched", "10000"),
]
COLUMNS = ("passed", "failed", "skipped", "xfailed", "error")


def run_id(device: str, shots: str) -> str:
    """The name of one pair, in the table and in the test ids."""
    return f"{device}-{shots}"


class PairsPlugin:
    """Parametrize PennyLane's device tests over several (device, shots) pairs at once.

    The suite's ``conftest.py`` parametrizes ``device_kwargs`` with the one device of
    ``--device``; this wraps that call and passes one ``device_kwargs`` per pair instead,
    built exactly as the conftest builds it (``{"name": device, "shots": shots}``).
    """

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.kwargs = [
            {"name": device, "shots": None if shots == "None" else int(shots)}
            for device, shots in pairs
        ]
        self.pair_of: dict[str, str] = {}
        self.seconds: Counter[str] = Counter()
        self.counts: dict[str, Counter[str]] = {run_id(*p): Counter() for p in pairs}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_generate_tests(self, metafunc: Any) -> Any:
        """Pass the pairs' ``device_kwargs`` where the conftest passes its one device's."""
        original = metafunc.parametrize

        def parametrize(argnames: Any, argvalues: Any, *args: Any, **kwargs: Any) -> Any:
            if argnames == "device_kwargs":
                # a fresh dict per test function: the device fixture writes "wires" into it
                argvalues = [dict(kw) for kw in self.kwargs]
                kwargs["ids"] = [run_id(*p) for p in self.pairs]
            return original(argnames, argvalues, *args, **kwargs)

        metafunc.parametrize = parametrize
        yield
        del metafunc.parametrize

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        """Note which pair each test belongs to."""
        for item in items:
            kwargs = getattr(item, "callspec", None) and item.callspec.params.get("device_kwargs")
            if kwargs is not None:
                shots = "None" if kwargs["shots"] is None else str(kwargs["shots"])
                self.pair_of[item.nodeid] = run_id(kwargs["name"], shots)

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Add each phase's seconds to its pair."""
        self.seconds[self.pair_of.get(report.nodeid, "session")] += report.duration

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Count pytest's own outcome categories per pair."""
        for category in COLUMNS:
            for report in terminalreporter.stats.get(category, []):
                pair = self.pair_of.get(getattr(report, "nodeid", ""))
                # an error outside any pair's tests (collection) counts against every pair
                for counts in [self.counts[pair]] if pair else self.counts.values():
                    counts[category] += 1


def worker(out: str, pairs: list[tuple[str, str]], extra: list[str]) -> int:
    """Run the suite once for ``pairs`` in this process; write the counts to ``out``."""
    from pennylane.devices.tests import get_device_tests

    plugin = PairsPlugin(pairs)
    args = [get_device_tests(), "-q", "-p", "no:cacheprovider", "--no-flaky-report", *extra]
    code = pytest.main(args, plugins=[plugin])
    result = {
        pair: {"counts": dict(counts), "seconds": plugin.seconds[pair]}
        for pair, counts in plugin.counts.items()
    }
    Path(out).write_text(json.dumps(result))
    return int(code)


def run_group(pairs: list[tuple[str, str]], extra: list[str]) -> dict[str, Any]:
    """One worker process for ``pairs``: counts and seconds per pair."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "counts.json")
        cmd = [sys.executable, __file__, "--worker", out, json.dumps(pairs), *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        result = json.loads(Path(out).read_text()) if os.path.exists(out) else {}
    broken = done.returncode not in (0, 1) or set(result) != {run_id(*p) for p in pairs}
    if done.returncode or broken:
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n", flush=True)
    if broken:  # the process died or pytest could not run: every pair failed
        result = {run_id(*p): {"counts": {"error": 1}, "seconds": 0.0} for p in pairs}
    return result


def main(extra: list[str]) -> int:
    """Run every pair, one worker process per core, and print the table.

    ``extra``: pytest arguments for every worker (``-k``, ``-x``, ...).
    """
    workers = min(os.cpu_count() or 1, len(RUNS))
    # pairs dealt round-robin: each worker gets a mix of devices and shot modes
    groups = [RUNS[i::workers] for i in range(workers)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results: dict[str, Any] = {}
        for result in pool.map(lambda g: run_group(g, extra), groups):
            results.update(result)
    print(f"{'device':<15}{'shots':>7}" + "".join(f"{c:>9}" for c in COLUMNS) + "  time")
    ok = True
    for device, shots in RUNS:
        entry = results[run_id(device, shots)]
        c = entry["counts"]
        counts = "".join(f"{c.get(k, 0):>9}" for k in COLUMNS)
        print(f"{device:<15}{shots:>7}{counts}  {entry['seconds']:.0f} s", flush=True)
        ok &= not c.get("failed") and not c.get("error") and c.get("passed", 0) > 0
    print(f"{len(RUNS)} runs in {workers} processes: {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--worker":
        pairs = [tuple(pair) for pair in json.loads(sys.argv[3])]
        sys.exit(worker(sys.argv[2], pairs, sys.argv[4:]))  # type: ignore[arg-type]
    sys.exit(main(sys.argv[1:]))
