"""Run PennyLane's device conformance suite on the qstore devices and print the counts.

Exits non-zero if any run has a failure or an error, or passes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

RUNS = [
    ("qstore.router", "None", {}),
    ("qstore.router", "10000", {}),
    ("qstore.qsim", "None", {}),
    ("qstore.qsim", "10000", {}),
    ("qstore.batched", "None", {}),
    ("qstore.batched", "10000", {}),
]
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)")


def run(device: str, shots: str, env: dict[str, str]) -> dict[str, int]:
    """Counts per outcome of one suite run."""
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
        print(out.stdout[-6000:], out.stderr[-3000:], sep="\n")
    return counts


def main() -> int:
    columns = ("passed", "failed", "skipped", "xfailed", "error")
    print(f"{'device':<15}{'shots':>7}" + "".join(f"{c:>9}" for c in columns) + "  time")
    ok = True
    for device, shots, env in RUNS:
        start = time.perf_counter()
        c = run(device, shots, env)
        seconds = time.perf_counter() - start
        counts = "".join(f"{c.get(k, 0):>9}" for k in columns)
        print(f"{device:<15}{shots:>7}{counts}  {seconds:.0f} s", flush=True)
        ok &= not c.get("failed") and not c.get("error") and c.get("passed", 0) > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
