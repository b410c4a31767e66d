"""Where the compiled path's first call goes: W1's first train step, phase by phase.

The first call is the first ``step()`` of ``w1_workload.py``'s ``router compiled``
contender in a fresh process, after imports and model construction: recording and
checking the circuit, routing, numba loading (or compiling) the batched engine's
kernels, building the gather indices and plans, then the step itself. Each phase's
time is the process's CPU time inside it (all threads), which a shared machine
disturbs far less than wall time; wall and CPU time of the whole first call and of a
later step are printed beside them.

The process's user and system CPU time and its page faults are printed for both
steps too: at 20 qubits the first call's extra time is nearly all system time, the
kernel mapping and zeroing the engine's state buffers (about 2 GB) on first touch;
a later step reuses that memory.

A router's first use on a machine (or after the package changes) calibrates its
backends, which loads numba's kernels before the timed call: ``main`` therefore makes
one router in a process of its own first, and the measured processes find the
calibration cached (``QSTORE_CALIBRATION``, as the environment sets it, holds in both).

numba caches compiled kernels on disk (``NUMBA_CACHE_DIR``, by default beside the
package's sources): a *warm* first call loads them, a *cold* one (``--cold``: an empty
temporary cache) compiles them, as the first run on a machine does.

    python benchmarks/first_call.py --qubits 4 16 20
    python benchmarks/first_call.py --qubits 20 --repeats 9
    python benchmarks/first_call.py --qubits 4 --cold

With ``--repeats``, each width runs in that many fresh processes, and a table ends the
output: every first call, and how many met the target (at most 1 s up to 16 qubits,
under 2 s above). On a shared machine the step itself moves from run to run, so one
run says little about a target near the step's time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
#: (module, attribute, phase): functions whose CPU time is a phase of the first call
PHASES = (
    ("qstore_pl.layers.compiled", "record", "record the circuit"),
    ("qstore_pl.layers.compiled", "verify", "check the recording"),
    ("qstore_pl.torch.layer", "trial_tape", "check weight shapes"),
    ("qstore_pl.torch.layer", "return_kind", "read the return kind"),
    ("qstore_pl.router.execution.compiled", "engine_decision", "route"),
    ("numba.core.dispatcher", "Dispatcher._compile_for_args", "numba: load/compile kernels"),
    ("qstore_pl.devices.batched.permutations", "full_permutation", "gather indices"),
    ("qstore_pl.devices.batched.plan", "Layout.__init__", "plan layouts"),
)


def _timed(owner, attr: str, phase: str, spent: dict[str, float]) -> None:
    inner = getattr(owner, attr)

    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[phase] = spent.get(phase, 0.0) + time.process_time() - start

    setattr(owner, attr, timed)


def child(n: int) -> dict:
    """In this process: build W1's torch model, time its first step by phase."""
    import importlib

    import torch
    from w1_workload import build, step_function

    torch.set_num_threads(2)
    spent: dict[str, float] = {}
    for module, path, phase in PHASES:
        owner = importlib.import_module(module)
        *parents, attr = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        _timed(owner, attr, phase, spent)
    _, model, optimiser, loss_fn, x, y = build(n, "qstore.router", {}, {}, compiled=True)
    step = step_function("train", model, optimiser, loss_fn, x, y)
    spent.clear()
    first, first_cpu, first_usage = _measured(step)
    phases = dict(spent)
    later, later_cpu, later_usage = _measured(step)
    return {
        "qubits": n,
        "first_s": first,
        "first_cpu_s": first_cpu,
        "step_s": later,
        "step_cpu_s": later_cpu,
        "phases_cpu_s": phases,
        "first_usage": first_usage,
        "step_usage": later_usage,
    }


def _measured(step) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds of ``step()``, and its user and system time and page faults."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start, start_cpu = time.perf_counter(), time.process_time()
    step()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    usage = {
        "user_s": after.ru_utime - before.ru_utime,
        "system_s": after.ru_stime - before.ru_stime,
        "page_faults": after.ru_minflt - before.ru_minflt,
    }
    return wall, cpu, usage


def run(n: int, cold: bool) -> dict:
    """One width in a fresh process; ``cold``: with an empty numba cache."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        cmd = [sys.executable, __file__, "--child", str(n)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"qubits": n, "error": tail[0][:160]}
    return json.loads(lines[-1])


def report(result: dict, cold: bool) -> str:
    """The breakdown of one width as text."""
    if "error" in result:
        return f"{result['qubits']} qubits: {result['error']}"
    cache = "cold numba cache" if cold else "warm numba cache"
    lines = [
        f"{result['qubits']} qubits, {cache}: first call {result['first_s']:.2f} s wall, "
        f"{result['first_cpu_s']:.2f} s CPU; a later step {result['step_s']:.3f} s wall, "
        f"{result['step_cpu_s']:.3f} s CPU; first call - step: "
        f"{result['first_cpu_s'] - result['step_cpu_s']:.2f} s CPU"
    ]
    for label, key in (("first call", "first_usage"), ("a later step", "step_usage")):
        usage = result[key]
        lines.append(
            f"    {label}: {usage['user_s']:.2f} s user, {usage['system_s']:.2f} s system, "
            f"{usage['page_faults']:.0f} page faults"
        )
    for phase, seconds in sorted(result["phases_cpu_s"].items(), key=lambda kv: -kv[1]):
        lines.append(f"    {phase:<30} {seconds:7.3f} s CPU")
    return "\n".join(lines)


def target(n: int) -> tuple[float, bool]:
    """The first-call target at ``n`` qubits, seconds, and whether a call of exactly
    that meets it: at most 1 s up to 16 qubits, under 2 s above."""
    return (1.0, True) if n <= 16 else (2.0, False)


def meets_target(n: int, first_s: float) -> bool:
    """Whether a first call of ``first_s`` seconds meets :func:`target`."""
    limit, inclusive = target(n)
    return first_s <= limit if inclusive else first_s < limit


def summary(results: list[dict]) -> str:
    """One row per width over its runs: each first call, the median later step and
    the runs that met the target."""
    rows = [
        "| qubits | first calls, s | later step, median s | first - step, median s | target "
        "| met |",
        "|---|---|---|---|---|---|",
    ]
    widths = sorted({r["qubits"] for r in results})
    for n in widths:
        runs = [r for r in results if r["qubits"] == n and "error" not in r]
        if not runs:
            rows.append(f"| {n} | failed | | | | |")
            continue
        firsts = [r["first_s"] for r in runs]
        steps = [r["step_s"] for r in runs]
        extra = [r["first_s"] - r["step_s"] for r in runs]
        limit, inclusive = target(n)
        met = sum(meets_target(n, f) for f in firsts)
        rows.append(
            f"| {n} | {', '.join(f'{f:.2f}' for f in firsts)} | {statistics.median(steps):.2f} "
            f"| {statistics.median(extra):.2f} | {'<=' if inclusive else '<'} {limit:.0f} s "
            f"| {met} of {len(runs)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12, 16])
    parser.add_argument("--cold", action="store_true", help="compile the kernels (empty cache)")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per width")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)), flush=True)
        return
    calibrate = "import pennylane as qml, qstore_pl; qml.device('qstore.router', wires=1)"
    made = subprocess.run([sys.executable, "-c", calibrate], capture_output=True, text=True)
    if made.returncode:
        tail = made.stderr.strip().splitlines()[-1:] or ["no output"]
        sys.exit(f"could not make a router to calibrate it: {tail[0]}")
    results = []
    for _ in range(args.repeats):
        for n in args.qubits:
            results.append(run(n, args.cold))
            print(report(results[-1], args.cold), flush=True)
    if args.repeats > 1:
        print()
        print(summary(results))


if __name__ == "__main__":
    main()
