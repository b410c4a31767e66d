"""Speedup of the router's Dask fan-out from one to two workers on this machine.

Workload: the DESIGN.md circuit (RX encoding, 4 layers of RY/RZ + ring of CNOTs, <Z> on
every qubit) as a batch of separate tapes through ``qstore.router``: a *forward* batch
(``qml.execute``) and a *train* batch (forward + adjoint VJP through torch).

Contenders, measured in the same run with their repeats interleaved (load from other
processes hits all alike):

- ``dask 1w``: the router on a Dask cluster of 1 worker process, 1 thread, bound to one core
- ``dask 2w``: the router on a Dask cluster of 2 worker processes, 1 thread each, one core each
- ``in-process``: the router with its serial executor, simulators free to use every core

Speedup = best time of ``dask 1w`` / best time of ``dask 2w`` (efficiency = speedup / 2);
medians are shown as well. ``--qcnn 23`` also measures one train circuit at 23 qubits on
one worker and prints the epoch-time model of the README from it.

    python benchmarks/bench_dask_scaling.py                    # 16, 18, 20 qubits
    python benchmarks/bench_dask_scaling.py --qubits 16 20 --repeats 5 --qcnn 23
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pennylane as qml
import torch
from distributed import Client, LocalCluster

LAYERS = 4
RESULTS = Path(__file__).parent / "results"
#: circuits per batch: each batch runs for a few seconds on one core
BATCH = {16: 64, 17: 48, 18: 32, 19: 24, 20: 16, 21: 8, 22: 4, 23: 2}
WORKER_ARGS = ("--nthreads", "1", "--no-nanny", "--no-dashboard")
WORKER_ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "QSTORE_CALIBRATION": "off"}


def circuit(features: np.ndarray, weights) -> list:
    """Operations of the workload for one sample."""
    n = len(features)
    ops = [qml.RX(features[i], wires=i) for i in range(n)]
    for layer in range(LAYERS):
        for i in range(n):
            ops.append(qml.RY(weights[layer, i, 0], wires=i))
            ops.append(qml.RZ(weights[layer, i, 1], wires=i))
        ops.extend(qml.CNOT([i, (i + 1) % n]) for i in range(n))
    return ops


def batch_tapes(n: int, batch: int, weights, seed: int = 0) -> list:
    features = np.random.default_rng(seed).uniform(0, np.pi, (batch, n))
    measurements = [qml.expval(qml.Z(i)) for i in range(n)]
    return [qml.tape.QuantumScript(circuit(x, weights), measurements) for x in features]


def forward(dev, n: int, batch: int):
    """A forward batch, ready to run: building the tapes is not timed."""
    weights = np.random.default_rng(1).uniform(-np.pi, np.pi, (LAYERS, n, 2))
    tapes = batch_tapes(n, batch, weights)
    return lambda: np.asarray(qml.execute(tapes, dev))


def train(dev, n: int, batch: int):
    """A train batch (forward + adjoint VJP through torch), ready to run."""
    weights = torch.tensor(
        np.random.default_rng(1).uniform(-np.pi, np.pi, (LAYERS, n, 2)), requires_grad=True
    )
    tapes = batch_tapes(n, batch, weights)

    def run():
        weights.grad = None
        results = qml.execute(tapes, dev, diff_method="adjoint", device_vjp=True)
        sum(torch.stack(list(r)).sum() for r in results).backward()
        return weights.grad.numpy()

    return run


class PinnedCluster:
    """A Dask scheduler and ``workers`` single-threaded ``dask worker`` processes,
    worker ``i`` bound to core ``i`` from its start (binding a running worker leaves
    thread pools sized for every core on one core, which crawls)."""

    def __init__(self, workers: int):
        self.scheduler = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=":0")
        self.address = self.scheduler.scheduler_address
        cores = sorted(os.sched_getaffinity(0))
        env = {**os.environ, **WORKER_ENV}
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", self.address, *WORKER_ARGS],
                env=env,
                preexec_fn=functools.partial(os.sched_setaffinity, 0, {cores[i % len(cores)]}),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(workers)
        ]
        with Client(self.address, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=30)
        self.scheduler.close()


def router(config_executor: dict | None):
    config = {"calibration": "off"}
    if config_executor:
        config["executor"] = config_executor
    return qml.device("qstore.router", wires=None, router_config=config)


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(devices: dict, task, n: int, batch: int, repeats: int) -> dict:
    runs = {name: task(dev, n, batch) for name, dev in devices.items()}
    outputs = {name: run() for name, run in runs.items()}  # warm-up
    reference = np.asarray(outputs["in-process"], dtype=float)
    for name, out in outputs.items():
        error = np.max(np.abs(np.asarray(out, dtype=float) - reference))
        assert error < 1e-4, f"{name} differs from in-process by {error}"
    times = {name: [] for name in devices}
    for _ in range(repeats):
        for name in devices:
            times[name].append(timed(runs[name]))
    backend = devices["in-process"].routing_report().recent[-1].backend
    return {
        "batch": batch,
        "backend": backend,
        "best": {k: min(v) for k, v in times.items()},
        "median": {k: statistics.median(v) for k, v in times.items()},
    }


def print_table(task: str, rows: dict[int, dict]) -> None:
    print(f"\n{task} batch: seconds per batch, best (median) of the repeats")
    header = (
        "| qubits | batch | backend | in-process | dask 1w | dask 2w | speedup 1w→2w | efficiency |"
    )
    print(header)
    print("|" + "---|" * 8)
    for n, row in rows.items():
        best, median = row["best"], row["median"]
        speedup = best["dask 1w"] / best["dask 2w"]
        speedup_median = median["dask 1w"] / median["dask 2w"]
        cells = [f"{best[k]:.2f} ({median[k]:.2f})" for k in ("in-process", "dask 1w", "dask 2w")]
        print(
            f"| {n} | {row['batch']} | {row['backend']} | {' | '.join(cells)} | "
            f"{speedup:.2f} ({speedup_median:.2f}) | {speedup / 2:.2f} ({speedup_median / 2:.2f}) |"
        )


def serial_seconds_per_circuit(row: dict) -> float:
    """The part of a batch that does not shrink with workers, per circuit.

    Fitted from ``t(W) = serial + parallel / W`` at W = 1 and 2 (best times): the
    client's preprocessing, packing and result handling.
    """
    one, two = row["best"]["dask 1w"], row["best"]["dask 2w"]
    return max(2 * two - one, 0.0) / row["batch"]


def epoch_model(train_seconds: float, serial: float, qubits: int) -> str:
    """Expected epoch time on N two-core nodes (2 single-core workers each).

    ``T(N) = D * (serial + train_seconds / (2 N))`` for D training circuits per epoch.
    """
    nodes = (1, 8, 32)
    # circuits per epoch that would take TFQ's quoted 4 hours on one node at our speed
    tfq_circuits = 4 * 3600 / (serial + train_seconds / 2)
    lines = [
        f"\nEpoch model at {qubits} qubits: one train circuit (forward + adjoint VJP) "
        f"takes {train_seconds:.2f} s on one core; serial part {serial * 1e3:.1f} ms per "
        "circuit (fitted from the largest forward row); a node runs 2 single-core workers.",
        "| circuits per epoch | " + " | ".join(f"{n} node(s)" for n in nodes) + " |",
        "|---|" + "---|" * len(nodes),
    ]
    for circuits in (1000, round(tfq_circuits)):
        cells = [circuits * (serial + train_seconds / (2 * n)) / 60 for n in nodes]
        lines.append(f"| {circuits:,} | " + " | ".join(f"{c:.1f} min" for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[16, 18, 20])
    parser.add_argument("--train-qubits", type=int, nargs="*", default=[16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks-per-worker", type=int, default=1)
    parser.add_argument("--qcnn", type=int, default=None, help="qubits of the epoch model")
    args = parser.parse_args()

    one, two = PinnedCluster(1), PinnedCluster(2)
    chunks = {"chunks_per_worker": args.chunks_per_worker}
    devices = {
        "in-process": router(None),
        "dask 1w": router({"kind": "dask", "address": one.address, **chunks}),
        "dask 2w": router({"kind": "dask", "address": two.address, **chunks}),
    }
    print(f"{platform.node()}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    measured = {"forward": {}, "train": {}}
    for n in args.qubits:
        measured["forward"][n] = measure(devices, forward, n, BATCH[n], args.repeats)
    print_table("forward", measured["forward"])
    for n in args.train_qubits:
        measured["train"][n] = measure(devices, train, n, BATCH[n] // 4, args.repeats)
    print_table("train", measured["train"])

    if args.qcnn:
        n, batch = args.qcnn, 1
        run = train(devices["dask 1w"], n, batch)
        run()  # warm-up
        seconds = min(timed(run) for _ in range(2))
        serial = serial_seconds_per_circuit(measured["forward"][max(args.qubits)])
        measured["epoch_model"] = {
            "qubits": n,
            "train_seconds_per_circuit": seconds,
            "serial_seconds_per_circuit": serial,
        }
        print(epoch_model(seconds, serial, n))
    print(f"load after: {os.getloadavg()[0]:.2f}")

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "dask_scaling.json"
    path.write_text(json.dumps(measured, indent=1, default=str))
    print(f"wrote {path}")
    for dev in devices.values():
        if hasattr(dev._executor, "close"):
            dev._executor.close()
    one.close()
    two.close()


if __name__ == "__main__":
    main()
