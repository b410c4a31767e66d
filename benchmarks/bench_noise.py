"""Noisy W1: qstore.router against default.mixed and TensorFlow Quantum's NoisyPQC.

Workload: W1 (benchmarks/w1_workload.py: batch 32, RX encoding, 4 layers of RY/RZ and
a ring of CNOTs, <Z> on every qubit, Linear(n -> 2), cross-entropy, Adam) with
``DepolarizingChannel(0.01)`` on every qubit after every layer. Per width, the train
step and the forward batch of

- ``default.mixed backprop``: PennyLane's density-matrix device, exact;
- ``router exact``: ``qstore.router`` with default settings (it routes the noisy
  circuits to default.mixed and backpropagates there), exact;
- ``router trajectories R=100``: :func:`qstore_pl.trajectories` on the router (pure
  trajectories on the batched engine), standard error ``<= 1/sqrt(R)`` per value;
- ``router qstore.aer``: ``qstore.router`` with only ``qstore.aer`` (Qiskit Aer's C++
  density matrix), exact; forward only (its derivatives are parameter shift: 2P + 1
  density matrices per circuit);
- ``TFQ NoisyPQC R=100`` when ``--tfq-python`` names an interpreter with TFQ 0.7.6
  (analytic expectation per trajectory: the same statistical error at equal R).

Each contender runs in its own process (peak memory is that process's); one first call,
then steps for ``--seconds``. A contender is skipped where its previous width predicts
more than ``--max-step-seconds`` (x4 per qubit for density matrices, x2 for state
vectors); the table then shows the density matrix's size instead.

    python benchmarks/bench_noise.py --qubits 4 8 12 --tfq-python /work/tfq-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
NOISE = 0.01
REPETITIONS = 100
AER = "router qstore.aer"
DENSITY = ("default.mixed backprop", "router exact", AER)
TRAJECTORIES = f"router trajectories R={REPETITIONS}"
TFQ = f"TFQ NoisyPQC R={REPETITIONS}"


def build(contender: str, n: int):
    import pennylane as qml
    from w1_workload import step_function, torch_model, w1_circuit

    circuit = w1_circuit(n, noise=NOISE)
    if contender == "default.mixed backprop":
        qnode = qml.QNode(circuit, qml.device("default.mixed", wires=n), diff_method="backprop")
    elif contender == AER:
        router = qml.device("qstore.router", wires=n, backends=["qstore.aer"])
        qnode = qml.QNode(circuit, router, diff_method="parameter-shift")
    else:
        import qstore_pl

        qnode = qml.QNode(circuit, qml.device("qstore.router", wires=n))
        if contender == TRAJECTORIES:
            qnode = qstore_pl.trajectories(qnode, repetitions=REPETITIONS, seed=0)
    return (*torch_model(qnode, n), step_function)


def measure(args) -> dict:
    import torch
    from w1_workload import time_steps

    torch.set_num_threads(1)
    model, optimiser, loss_fn, x, y, step_function = build(args.contender, args.qubits)
    step = step_function(args.mode, model, optimiser, loss_fn, x, y)
    first, times, _ = time_steps(step, args.seconds, args.min_steps)
    return {
        "contender": args.contender,
        "qubits": args.qubits,
        "mode": args.mode,
        "first_s": first,
        "median_ms": 1e3 * statistics.median(times),
        "steps": len(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run(contender: str, n: int, mode: str, args) -> dict | None:
    common = ["--qubits", str(n), "--mode", mode, "--seconds", str(args.seconds)]
    if contender == TFQ:
        command = [args.tfq_python, str(HERE / "noise_tfq.py"), *common]
        command += ["--noise", str(NOISE), "--repetitions", str(REPETITIONS)]
    else:
        command = [sys.executable, __file__, "--worker", contender, *common]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        print(f"  {contender} n={n} {mode}: failed\n{done.stderr[-1500:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--modes", nargs="+", default=["forward", "train"])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--min-steps", type=int, default=2)
    parser.add_argument("--max-step-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--tfq-python", default=None)
    parser.add_argument("--contenders", nargs="+", default=None, help="a subset, by name")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="train", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.contender, args.qubits = args.worker, args.qubits[0]
        print(json.dumps(measure(args)), flush=True)
        return
    contenders = [*DENSITY, TRAJECTORIES] + ([TFQ] if args.tfq_python else [])
    forward_only = {AER}
    contenders = [c for c in contenders if args.contenders is None or c in args.contenders]
    rows = []
    for mode in args.modes:
        last: dict[str, tuple[int, float]] = {}
        for n in args.qubits:
            for contender in contenders:
                if mode != "forward" and contender in forward_only:
                    continue
                if contender in last:
                    width, ms = last[contender]
                    growth = 4.0 if contender in DENSITY else 2.0
                    if ms * growth ** (n - width) / 1e3 > args.max_step_seconds:
                        rows.append({"contender": contender, "qubits": n, "mode": mode})
                        continue
                result = run(contender, n, mode, args)
                if result is not None:
                    last[contender] = (n, result["median_ms"])
                    rows.append(result)
                    print(json.dumps(result), flush=True)
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    print(
        f"\n{'mode':<8}{'n':>3}  {'contender':<28}{'median ms':>11}{'vs mixed':>10}{'peak MB':>9}"
    )
    for row in rows:
        mixed = next(
            (
                r
                for r in rows
                if r["contender"] == "default.mixed backprop"
                and r["qubits"] == row["qubits"]
                and r["mode"] == row["mode"]
                and "median_ms" in r
            ),
            None,
        )
        if "median_ms" not in row:
            why = "predicted over --max-step-seconds"
            if row["contender"] in DENSITY:
                why += f"; 32 density matrices: {16 * 4 ** row['qubits'] * 32 / 2**20:,.0f} MB"
            where = f"{row['mode']:<8}{row['qubits']:>3}  {row['contender']:<28}"
            print(f"{where}{'skipped':>11}  ({why})")
            continue
        ratio = f"{mixed['median_ms'] / row['median_ms']:.2f}x" if mixed else "-"
        print(
            f"{row['mode']:<8}{row['qubits']:>3}  {row['contender']:<28}"
            f"{row['median_ms']:>11.1f}{ratio:>10}{row['peak_rss_mb']:>9.0f}"
        )


if __name__ == "__main__":
    main()
