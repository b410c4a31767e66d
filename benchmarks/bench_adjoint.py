"""The batched engine's W1 train step by phase: forward, measurement, adjoint sweep.

The engine alone (no framework, no router): W1's circuit (RX encoding, 4 layers of
RY/RZ + CNOT ring, <Z> on every qubit, batch 32) bound once, then per step the forward
pass, the expectation values, and the adjoint states of a random cotangent with the
backward sweep that reads every RY/RZ derivative (one phase: since 2026-12-07 the
engine builds the adjoint states inside the sweep's call). Reported per phase: the
median wall time and the median process CPU time (all threads) over ``--repeats``
steps; the machine is shared, and CPU time is the figure that survives other jobs best.

``--compare-to DIR`` runs the same measurement with the ``qstore_pl`` of another
checkout (for instance a worktree of an earlier commit) in a subprocess, interleaved
with this one's, and prints the ratios: how much a change to the engine bought.
``--kernel`` picks the engine's kernel (the row kernel by default, ``qsim``, or
``auto``: what ``qstore.batched`` picks), ``--compare-kernel`` the compared run's.

``--load 0 1`` measures each width quiet and beside one busy process (``busy.py``),
the loads interleaved within each round; with ``--compare-to`` both checkouts run
under the same load.

    python benchmarks/bench_adjoint.py --qubits 12 16 --dtype complex64
    python benchmarks/bench_adjoint.py --qubits 20 --load 0 1 --rounds 2
    git worktree add /tmp/before <commit>
    python benchmarks/bench_adjoint.py --qubits 16 --compare-to /tmp/before --rounds 3
    python benchmarks/bench_adjoint.py --qubits 20 --compare-to . --compare-kernel qsim
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from busy import add_load_option, busy_processes

LAYERS, BATCH = 4, 32
PHASES = ("forward", "measure", "adjoint states and backward sweep")


def measure(n: int, dtype: str, repeats: int, kernel: str) -> dict[str, dict[str, float]]:
    """Median wall and CPU milliseconds per phase of one engine train step."""
    import pennylane as qml

    from qstore_pl.devices.batched import BatchedDevice, adjoint
    from qstore_pl.devices.batched.adjoint import backward, forward
    from qstore_pl.devices.batched.measure import adjoint_states, measure_all
    from qstore_pl.devices.batched.program import Program

    def sweep(psi, cotangents):
        """The adjoint states and the backward sweep: one call from 2026-12-07 on
        (``vjp_sweep``); a checkout before it (``--compare-to``) stacked ψ over λ
        itself, or earlier took them apart."""
        if hasattr(adjoint, "vjp_sweep"):
            measurements = program.measurements
            return adjoint.vjp_sweep(kernel, bound, psi, measurements, cotangents, trainable)
        if hasattr(adjoint, "sweep_states"):
            states = adjoint.sweep_states(kernel, psi, program.measurements, cotangents, n)
            return backward(kernel, bound, states, trainable)
        lam = adjoint_states(kernel, psi, program.measurements, cotangents, n)
        return backward(kernel, bound, psi, lam, trainable)

    rng = np.random.default_rng(0)
    x = rng.uniform(0, np.pi, (BATCH, n))
    w = rng.uniform(-np.pi, np.pi, (LAYERS, n, 2))
    ops = [qml.RX(x[:, i], wires=i) for i in range(n)]
    for layer in range(LAYERS):
        for i in range(n):
            ops += [qml.RY(w[layer, i, 0], wires=i), qml.RZ(w[layer, i, 1], wires=i)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(i)) for i in range(n)])
    device = BatchedDevice(wires=n, c_dtype=np.dtype(dtype).type, kernel=kernel)
    program = Program(tape)
    bound = program.bind([tape])
    kernel = device.kernel_for(bound)
    trainable = frozenset(p for p, t in enumerate(program.gates) if t.name in ("RY", "RZ"))
    cotangents = [rng.normal(size=BATCH) for _ in range(n)]

    def step() -> list[tuple[float, float]]:
        times = [(time.perf_counter(), time.process_time())]
        psi = forward(kernel, bound)
        times.append((time.perf_counter(), time.process_time()))
        measure_all(kernel, psi, program.measurements, n)
        times.append((time.perf_counter(), time.process_time()))
        sweep(psi, cotangents)
        times.append((time.perf_counter(), time.process_time()))
        return [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(times)]

    step()  # kernels, plans and gather indices
    steps = [step() for _ in range(repeats)]
    return {
        phase: {
            "wall": 1e3 * statistics.median(s[i][0] for s in steps),
            "cpu": 1e3 * statistics.median(s[i][1] for s in steps),
        }
        for i, phase in enumerate(PHASES)
    }


def run_elsewhere(checkout: str, n: int, dtype: str, repeats: int, kernel: str) -> dict:
    """:func:`measure` with the ``qstore_pl`` of ``checkout``, in a subprocess."""
    env = dict(os.environ, PYTHONPATH=checkout, QSTORE_CALIBRATION="off")
    command = [sys.executable, __file__, "--one", str(n), "--dtype", dtype]
    command += ["--repeats", str(repeats), "--kernel", kernel]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[12, 16])
    parser.add_argument("--dtype", choices=("complex64", "complex128"), default="complex64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    parser.add_argument("--compare-to", help="a checkout whose qstore_pl to compare against")
    parser.add_argument("--kernel", choices=("jit", "qsim", "auto"), default="jit")
    parser.add_argument("--compare-kernel", choices=("jit", "qsim", "auto"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    add_load_option(parser, "the engine")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.dtype, args.repeats, args.kernel)))
        return
    if any(load < 0 for load in args.load):
        parser.error("--load takes numbers of busy processes (0 or more)")
    loads = sorted(set(args.load))
    compare_kernel = args.compare_kernel or args.kernel
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {(n, load): ([], []) for n in args.qubits for load in loads}
    for n in args.qubits:
        for _ in range(args.rounds):
            for load in loads:
                mine, theirs = results[n, load]
                with busy_processes(load):
                    mine.append(run_elsewhere(here, n, args.dtype, args.repeats, args.kernel))
                    if args.compare_to:
                        theirs.append(
                            run_elsewhere(
                                args.compare_to, n, args.dtype, args.repeats, compare_kernel
                            )
                        )
    header = "| qubits | busy processes | phase | wall ms | CPU ms |"
    if args.compare_to:
        header += " compared: wall ms | compared: CPU ms | CPU ratio (compared / this) |"
    print(
        f"W1 engine train step, batch {BATCH}, {args.dtype}, kernel {args.kernel}"
        + (f" (compared: {compare_kernel})" if args.compare_to else "")
        + f", medians over {args.rounds} round(s)"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for (n, load), (mine, theirs) in results.items():
        for phase in (*PHASES, "total"):
            wall, cpu = _median(mine, phase, "wall"), _median(mine, phase, "cpu")
            line = f"| {n} | {load} | {phase} | {wall:.1f} | {cpu:.1f} |"
            if theirs:
                their_wall = _median(theirs, phase, "wall")
                their_cpu = _median(theirs, phase, "cpu")
                line += f" {their_wall:.1f} | {their_cpu:.1f} | {their_cpu / cpu:.2f}x |"
            print(line)


def _median(results: list[dict], phase: str, key: str) -> float:
    """The median over rounds of one phase's time (``total``: of the phases' sum)."""
    if phase == "total":
        return statistics.median(sum(r[p][key] for p in PHASES) for r in results)
    return statistics.median(r[phase][key] for r in results)


if __name__ == "__main__":
    main()
