"""Forward-pass time of qstore.qsim against pennylane-cirq's cirq.qsim and lightning.qubit.

The DESIGN.md workload: RX angle encoding of n features, 4 layers of (RY, RZ on every
qubit, ring of CNOTs), <Z> on every qubit. A batch of circuits with different
parameters goes through ``qml.execute`` as separate tapes (``--mode tapes``, what a
training loop over samples sends) or as one parameter-broadcast tape (``--mode
broadcast``, what TorchLayer sends; devices without native broadcasting split it).

Every device runs every batch once to warm up, then the repeats interleave the
devices, so load from other processes hits all of them alike. Reported: the best and
the median time per circuit over the repeats, and the ratio of cirq.qsim's best to
each device's best. Results are checked against lightning.qubit (complex128).

    python benchmarks/bench_qsim_forward.py                 # 16 and 20 qubits
    python benchmarks/bench_qsim_forward.py --qubits 16 20 22
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pennylane as qml

LAYERS = 4
RESULTS = Path(__file__).parent / "results"

#: label -> (device name, keyword arguments); the first is the reference for errors,
#: "cirq.qsim" the baseline for ratios.
DEVICES = {
    "qstore.qsim": ("qstore.qsim", {}),
    "cirq.qsim": ("cirq.qsim", {}),
    "lightning c128": ("lightning.qubit", {"c_dtype": np.complex128}),
    "lightning c64": ("lightning.qubit", {"c_dtype": np.complex64}),
}
REFERENCE, BASELINE = "lightning c128", "cirq.qsim"


def circuit_ops(features: np.ndarray, weights: np.ndarray) -> list:
    """Operations of the workload: ``features`` (n,) or (batch, n); ``weights`` likewise."""
    n = features.shape[-1]
    ops = [qml.RX(features[..., i], wires=i) for i in range(n)]
    for layer in range(LAYERS):
        for i in range(n):
            ops.append(qml.RY(weights[..., layer, i, 0], wires=i))
            ops.append(qml.RZ(weights[..., layer, i, 1], wires=i))
        ops.extend(qml.CNOT([i, (i + 1) % n]) for i in range(n))
    return ops


def batch_tapes(n: int, batch: int, mode: str, rng: np.random.Generator) -> list:
    """The batch as tapes: ``batch`` tapes, or one tape broadcast over ``batch``."""
    features = rng.uniform(0, np.pi, (batch, n))
    weights = rng.uniform(-np.pi, np.pi, (batch, LAYERS, n, 2))
    measurements = [qml.expval(qml.Z(i)) for i in range(n)]
    if mode == "broadcast":
        return [qml.tape.QuantumScript(circuit_ops(features, weights), measurements)]
    return [
        qml.tape.QuantumScript(circuit_ops(f, w), measurements) for f, w in zip(features, weights)
    ]


def flat_results(results, mode: str) -> np.ndarray:
    """Results as a (batch, n) array, whatever the batching mode."""
    array = np.array(results, dtype=float)
    return array[0].T if mode == "broadcast" else array


def measure(n: int, batch: int, mode: str, repeats: int, seed: int) -> dict:
    """Seconds per circuit (all repeats) and max error per device, for one width."""
    tapes = batch_tapes(n, batch, mode, np.random.default_rng(seed))
    devices = {label: qml.device(name, wires=n, **kw) for label, (name, kw) in DEVICES.items()}
    values = {
        label: flat_results(qml.execute(tapes, dev, diff_method=None), mode)
        for label, dev in devices.items()
    }
    times = {label: [] for label in devices}
    for _ in range(repeats):
        for label, dev in devices.items():
            start = time.perf_counter()
            qml.execute(tapes, dev, diff_method=None)
            times[label].append((time.perf_counter() - start) / batch)
    errors = {label: float(np.max(np.abs(v - values[REFERENCE]))) for label, v in values.items()}
    return {"times": times, "errors": errors}


def print_table(measured: dict[int, dict], batch: int, mode: str) -> None:
    print(
        f"\nForward pass, {LAYERS} layers, batch of {batch} ({mode}), ms per circuit "
        f"(best / median of repeats); ratio = cirq.qsim best / device best; "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    )
    header = f"{'qubits':>6} | " + " | ".join(f"{label:>24}" for label in DEVICES)
    print(header + "\n" + "-" * len(header))
    for n, result in measured.items():
        baseline = min(result["times"][BASELINE])
        cells = []
        for label in DEVICES:
            runs = result["times"][label]
            best, median = min(runs), statistics.median(runs)
            cells.append(f"{best * 1e3:8.1f} /{median * 1e3:8.1f} {baseline / best:5.1f}x")
        print(f"{n:>6} | " + " | ".join(f"{c:>24}" for c in cells))
    print("\nmax |difference| from lightning c128 over all <Z_i>:")
    for n, result in measured.items():
        print(f"{n:>6}   " + "  ".join(f"{k}: {v:.1e}" for k, v in result["errors"].items()))


def plot(measured: dict[int, dict], batch: int, mode: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = list(measured)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in DEVICES:
        best = [min(measured[n]["times"][label]) * 1e3 for n in widths]
        ax.plot(widths, best, marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xticks(widths)
    ax.set_xlabel("qubits")
    ax.set_ylabel("ms per circuit (best of repeats)")
    ax.set_title(f"Forward pass, {LAYERS} layers, <Z> on every qubit, batch {batch} ({mode})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"qsim_forward_{mode}_{'-'.join(map(str, widths))}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[16, 20])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=("tapes", "broadcast"), default="tapes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    measured = {}
    for n in args.qubits:
        print(f"measuring {n} qubits ...", flush=True)
        measured[n] = measure(n, args.batch, args.mode, args.repeats, args.seed)
    print_table(measured, args.batch, args.mode)
    print(f"\nplot: {plot(measured, args.batch, args.mode)}")


if __name__ == "__main__":
    main()
