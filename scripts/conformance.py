"""Run PennyLane's device conformance suite on the qstore devices and print the counts.

The runs are independent processes of about one core each, so they run side by side,
one per core. Exits non-zero if any run has a failure or an error, or passes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

RUNS = [
    ("qstore.router", "None", {}),
    ("qstore.router", "10000", {}),
    ("qstore.qsim", "None", {}),
    ("qstore.qsim", "10000", {}),
    ("qstore.batched", "None", {}),
    ("qstore.batched", "10000", {}),
]
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)")


def run(device: str, shots: str, env: dict[str, str]) -> tuple[dict[str, int], float]:
    """Counts per outcome of one suite run, and its seconds."""
    start = time.perf_counter()
    cmd = [
        "pl-device-test",
        f"--device={device}",
        f"--shots={shots}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **env}, check=False
    )
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    counts = {
        kind.rstrip("s") if kind.startswith("error") else kind: int(n)
        for n, kind in _COUNT.findall(summary)
    }
    if counts.get("failed") or counts.get("error") or not counts.get("passed"):
        print(out.stdout[-6000:], out.stderr[-3000:], sep="\n", flush=True)
    return counts, time.perf_counter() - start


def main() -> int:
    columns = ("passed", "failed", "skipped", "xfailed", "error")
    print(f"{'device':<15}{'shots':>7}" + "".join(f"{c:>9}" for c in columns) + "  time")
    ok = True
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(lambda r: run(*r), RUNS))
    for (device, shots, _), (c, seconds) in zip(RUNS, outcomes):
        counts = "".join(f"{c.get(k, 0):>9}" for k in columns)
        print(f"{device:<15}{shots:>7}{counts}  {seconds:.0f} s", flush=True)
        ok &= not c.get("failed") and not c.get("error") and c.get("passed", 0) > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
