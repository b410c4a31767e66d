"""What a W1 training step would cost on IonQ Aria, and what native compilation does.

For the W1 circuit (RX encoding, 4 layers of RY, RZ and a CNOT ring, <Z> on every
qubit) at several widths: gate counts as written, compiled gate by gate, and compiled
by qstore_pl (fusion + virtual Z); the price of one training step of a batch of 32 at
1000 shots with the parameter-shift rule and with SPSA (Azure's Aria prices); and the
wall time of one 32-circuit job through qstore.router against the offline emulator.
One command, one table::

    python benchmarks/bench_ionq_cost.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import pennylane as qml

from qstore_pl.circuits.ionq_native import GateCounts, compile_native
from qstore_pl.devices.ionq.emulator import IonQEmulator
from qstore_pl.devices.ionq.pricing import default_pricing
from qstore_pl.router.money.estimate import CostLine

LAYERS, BATCH, SHOTS = 4, 32, 1000


def w1_ops(n: int, x: np.ndarray, w: np.ndarray) -> list:
    ops = [qml.RX(x[i], i) for i in range(n)]
    for layer in range(LAYERS):
        ops += [qml.RY(w[layer, i, 0], i) for i in range(n)]
        ops += [qml.RZ(w[layer, i, 1], i) for i in range(n)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
    return ops


def job_seconds(n: int, rng: np.random.Generator, repeats: int = 3) -> float:
    """Median wall time of one 32-circuit job through the router and the emulator."""
    cfg = {
        "backends": [{"name": "ionq", "type": "ionq", "target": "simulator"}],
        "ledger": os.path.join(tempfile.mkdtemp(), "l.sqlite"),
        "calibration": "off",
    }
    dev = qml.device("qstore.router", wires=n, router_config=cfg)
    x = rng.uniform(0, np.pi, (BATCH, n))
    w = rng.uniform(-np.pi, np.pi, (LAYERS, n, 2))

    @qml.qnode(dev, shots=SHOTS)
    def circuit():
        for op in w1_ops(n, x.T, w):
            qml.apply(op)
        return [qml.expval(qml.Z(i)) for i in range(n)]

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        circuit()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    aria = default_pricing("qpu.aria-1")
    with IonQEmulator(seed=0) as emulator:
        os.environ["QSTORE_IONQ_URL"] = emulator.url
        os.environ.setdefault("IONQ_API_KEY", "bench")
        header = (
            f"{'qubits':>6} {'written 1q/2q':>14} {'gate-by-gate':>13} {'fused':>9} "
            f"{'PS step USD':>12} {'SPSA step USD':>14} {'PS/SPSA':>8} {'job s':>7}"
        )
        print(header)
        for n in (4, 8, 12):
            ops = w1_ops(n, rng.uniform(0, np.pi, n), rng.uniform(-np.pi, np.pi, (LAYERS, n, 2)))
            written = GateCounts.of(ops)
            naive = [compile_native([op]).counts for op in ops]
            naive_1q = sum(c.one_qubit for c in naive)
            fused = compile_native(ops).counts
            line = CostLine(
                backend="aria",
                pricing=aria,
                gates=(written.one_qubit, written.two_qubit),
                native_gates=(fused.one_qubit, fused.two_qubit),
                circuits=BATCH,
                trainable=2 * LAYERS * n,
                shots=SHOTS,
            )
            ps, spsa = line.cost("parameter-shift"), line.cost("spsa")
            print(
                f"{n:>6} {f'{written.one_qubit}/{written.two_qubit}':>14} "
                f"{f'{naive_1q}/{written.two_qubit}':>13} "
                f"{f'{fused.one_qubit}/{fused.two_qubit}':>9} {ps:>12,.0f} {spsa:>14,.0f} "
                f"{ps / spsa:>8.1f} {job_seconds(n, rng):>7.2f}"
            )


if __name__ == "__main__":
    main()
