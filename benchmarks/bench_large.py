"""W1 at 20-24 qubits against this machine's memory-bandwidth floor and published figures.

At these widths a state vector (2**n amplitudes: 8 MiB at 20 qubits, 128 MiB at 24 in
complex64) no longer fits in cache, so every gate that sweeps the state reads and writes
it from memory, and memory bandwidth bounds the step from below:

    floor = sweeps x 2 x state bytes / bandwidth

with ``sweeps`` = G = 13 n gates per sample for the forward pass (n RX, then 4 layers
of 2 n rotations and n CNOTs) and 3 G for the adjoint train step (forward, then every
gate undone on the state and on the cotangent-weighted bra). Engines that fuse gates
(qsim fuses up to ``f`` qubits into one sweep) can go below this per-gate floor.

The script measures

- the bandwidth: numpy copy (read + write) of a 1 GiB array, on one thread and on two
  threads (each copying half), best of ``--repeats``;
- the W1 forward batch and train step (``qstore_pl.torch.TorchLayer`` on
  ``qstore.router``, the compiled path) at each width, each width in a fresh process,
  with ``--batch`` samples (W1's 32 takes minutes per step at 24 qubits on 2 cores);

and prints ns per gate per amplitude (time / (samples x sweeps x 2**n)) beside the
floor and the published figures in ``PUBLISHED`` (see the README, "W1 at 20-24 qubits").

    python benchmarks/bench_large.py --qubits 20 22 24 --batch 4 2 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
LAYERS = 4

#: Published CPU figures, normalised by ``ns_per_gate_amplitude`` below:
#: (source, machine, circuit, qubits, seconds, gates, precision bytes per amplitude)
PUBLISHED = [
    # qsim docs/choose_hw.md, "Sample benchmarks": random circuit, depth 20, f=3, all threads
    ("qsim docs", "GCP c2-standard-4 (4 vCPU)", "random, depth 20", 20, 0.031, 20 * 30, 8),
    ("qsim docs", "GCP c2-standard-4 (4 vCPU)", "random, depth 20", 24, 0.658, 20 * 36, 8),
    ("qsim docs", "GCP c2-standard-60 (60 vCPU)", "random, depth 20", 20, 0.013, 20 * 30, 8),
    ("qsim docs", "GCP c2-standard-60 (60 vCPU)", "random, depth 20", 24, 0.123, 20 * 36, 8),
]


def gates(n: int) -> int:
    """Gates of one W1 sample: n RX, then per layer 2 n rotations and n CNOTs."""
    return n + LAYERS * 3 * n


def fused_sweeps(n: int) -> int:
    """Passes over the state of one W1 forward sample on the batched engine, which fuses
    consecutive one-wire gates on a wire into one matrix and consecutive permutations
    (the CNOT ring) into one gather: per layer n matrices (the encoding's RX joins the
    first layer's) and one gather."""
    return LAYERS * (n + 1)


def bandwidth(threads: int, gib: float = 1.0, repeats: int = 5) -> float:
    """Bytes per second of a numpy copy (read + write) over ``threads`` threads."""
    n = int(gib * 2**30) // 8
    src = np.ones(n)
    dst = np.zeros_like(src)  # written once: no page faults in the timed copies
    chunks = np.array_split(np.arange(n), threads)
    bounds = [(c[0], c[-1] + 1) for c in chunks]

    def copy(lo: int, hi: int) -> None:
        np.copyto(dst[lo:hi], src[lo:hi])  # numpy releases the GIL for the copy

    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=copy, args=b) for b in bounds]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def worker(n: int, batch: int, steps: int) -> dict:
    """Forward batch and train step of W1 at ``n`` qubits, ``batch`` samples, compiled path."""
    import torch
    import w1_workload

    w1_workload.BATCH = batch  # read by torch_model and fresh_batches
    dev, model, optimiser, loss_fn, x, y = w1_workload.build(
        n, "qstore.router", {}, {}, compiled=True
    )
    out: dict = {"qubits": n, "batch": batch, "threads": torch.get_num_threads()}
    seen = groups(dev)
    for mode in ("forward", "train"):
        step = w1_workload.step_function(mode, model, optimiser, loss_fn, x, y)
        first, times, _ = w1_workload.time_steps(step, 0.0, steps, steps)
        now = groups(dev)
        chosen = sorted(name for name in now if now[name] > seen.get(name, 0))
        out[mode] = {"first_s": first, "median_s": statistics.median(times), "chosen": chosen}
        seen = now
    return out


def groups(dev) -> dict[str, int]:
    """Groups each backend has run so far, from the router's report."""
    return {name: t.groups for name, t in dev.routing_report().totals.items()}


def amplitude_bytes(chosen: list[str]) -> int:
    """Bytes per amplitude of the backend the router chose (qsim and ``.c64``: complex64)."""
    single = all(name.endswith(".c64") or name == "qstore.qsim" for name in chosen)
    return 8 if single else 16


def run_width(n: int, batch: int, steps: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(n), str(batch), str(steps)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_WAIT_POLICY": "PASSIVE"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"qubits": n, "batch": batch, "error": f"over {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"qubits": n, "batch": batch, "error": done.stderr.strip()[-300:]}
    return json.loads(lines[-1])


def ns_per_gate_amplitude(seconds: float, samples: int, sweeps: int, n: int) -> float:
    return 1e9 * seconds / (samples * sweeps * 2**n)


def table(rows: list[dict], bw1: float, bw2: float) -> str:
    bw = max(bw1, bw2)
    lines = [
        f"memory bandwidth (numpy copy, read + write): {bw1 / 1e9:.1f} GB/s on 1 thread, "
        f"{bw2 / 1e9:.1f} GB/s on 2",
        "",
        "| qubits | batch | backend | mode | step s | per sample s | floor per sample s "
        "| x floor | ns / gate / amplitude | floor ns / gate / amp | x fused floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['qubits']} | {r['batch']} | error: {r['error'][:80]} |")
            continue
        n, b = r["qubits"], r["batch"]
        for mode, sweeps in (("forward", gates(n)), ("train", 3 * gates(n))):
            t, chosen = r[mode]["median_s"], r[mode]["chosen"]
            amp = amplitude_bytes(chosen)
            floor = sweeps * 2 * amp * 2**n / bw
            per_gate = ns_per_gate_amplitude(t, b, sweeps, n)
            floor_ns = ns_per_gate_amplitude(floor, 1, sweeps, n)
            # the forward pass's floor once gates are fused (the adjoint pass differentiates
            # gate by gate, so its count is not known from the circuit alone)
            fused = fused_sweeps(n) * 2 * amp * 2**n / bw
            against_fused = f"{t / b / fused:.1f}x" if mode == "forward" else "-"
            lines.append(
                f"| {n} | {b} | {', '.join(chosen)} ({amp} B) | {mode} | {t:.2f} "
                f"| {t / b:.2f} | {floor:.3f} | {t / b / floor:.1f}x | {per_gate:.3f} "
                f"| {floor_ns:.3f} | {against_fused} |"
            )
    lines += ["", "| published | machine | circuit | qubits | s | ns / gate / amplitude |"]
    lines.append("|---|---|---|---|---|---|")
    for source, machine, circuit, n, seconds, count, _ in PUBLISHED:
        per = ns_per_gate_amplitude(seconds, 1, count, n)
        lines.append(f"| {source} | {machine} | {circuit} | {n} | {seconds} | {per:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--qubits", type=int, nargs="+", default=[20, 22, 24])
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 2, 1], help="per width")
    parser.add_argument("--steps", type=int, default=1, help="timed steps after the first")
    parser.add_argument("--repeats", type=int, default=5, help="bandwidth repeats")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    batches = args.batch + [args.batch[-1]] * (len(args.qubits) - len(args.batch))
    print(f"load average before: {os.getloadavg()}", flush=True)
    bw1, bw2 = bandwidth(1, repeats=args.repeats), bandwidth(2, repeats=args.repeats)
    rows = []
    for n, b in zip(args.qubits, batches):
        rows.append(run_width(n, b, args.steps, args.timeout))
        print(f"{n} qubits: {rows[-1]}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    out = HERE / "results" / "large.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"bandwidth": [bw1, bw2], "rows": rows}, indent=1))
    print(table(rows, bw1, bw2))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(HERE))
        print(json.dumps(worker(*map(int, sys.argv[2:]))), flush=True)
    else:
        main()
