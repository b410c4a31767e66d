"""The Keras layer's train step against the torch layer's, and what Keras itself costs.

One process, compiled path on ``qstore.router`` for both layers, W1 (``w1_workload.py``).
Six steps per width, measured in interleaved blocks (A B C ... A B C ...), each block's
median of ``--steps`` steps, the table's figures the median over blocks:

- ``torch``: ``qstore_pl.torch.TorchLayer`` + Linear, Adam (the ``router compiled``
  contender); ``torch empty``: the same with ``Linear(n, n)`` in the layer's place;
- ``keras fn``: ``qstore_pl.keras.KerasLayer`` + Dense, a ``tf.function`` train step
  as TFQ's contender writes it (the ``router keras`` contender); ``keras fn empty``;
- ``keras tob``: the same model through ``model.train_on_batch``; ``keras tob empty``.

The layer's own cost is a step minus its empty model's step (same block). Keras's
fixed per-step cost, which no layer can avoid, is ``keras * empty - torch empty``.

    KERAS_BACKEND=tensorflow python benchmarks/bench_keras_step.py --qubits 4 8 12
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

STEPS = ("torch", "torch empty", "keras fn", "keras fn empty", "keras tob", "keras tob empty")


def steps_for(n: int) -> dict:
    """The six train steps at width ``n``."""
    import torch
    from w1_workload import build, build_keras, step_function

    _, model, optimiser, loss_fn, x, y = build(n, "qstore.router", {}, {}, compiled=True)
    empty = torch.nn.Sequential(torch.nn.Linear(n, n), torch.nn.Linear(n, 2))
    empty_optimiser = torch.optim.Adam(empty.parameters(), lr=0.01)
    return {
        "torch": step_function("train", model, optimiser, loss_fn, x, y),
        "torch empty": step_function("train", empty, empty_optimiser, loss_fn, x, y),
        "keras fn": build_keras(n, "train")[1],
        "keras fn empty": build_keras(n, "train", quantum=False)[1],
        "keras tob": build_keras(n, "train", step="train_on_batch")[1],
        "keras tob empty": build_keras(n, "train", step="train_on_batch", quantum=False)[1],
    }


def measure(n: int, blocks: int, steps: int) -> tuple[dict, dict]:
    """Per step name, the median wall and CPU seconds of each block (CPU time, all
    threads of this process, moves less than wall time on a shared machine)."""
    named = steps_for(n)
    for step in named.values():  # first calls: compilation, tracing, routing
        step()
        step()
    wall: dict[str, list[float]] = {name: [] for name in named}
    cpu: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(blocks):
        for name, step in named.items():
            times, cpu_times = [], []
            for _ in range(steps):
                start, start_cpu = time.perf_counter(), time.process_time()
                step()
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - start_cpu)
            wall[name].append(statistics.median(times))
            cpu[name].append(statistics.median(cpu_times))
    return wall, cpu


def row(n: int, medians: dict[str, list[float]], cpu: dict[str, list[float]]) -> str:
    """One table row: medians in ms, then per-block ratios and differences (medians)."""
    blocks = range(len(medians["torch"]))

    def own(name: str) -> list[float]:
        return [medians[name][i] - medians[f"{name} empty"][i] for i in blocks]

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{statistics.median(x / y for x, y in zip(a, b)):.2f}x"

    cells = [f"{1e3 * statistics.median(medians[name]):,.2f}" for name in STEPS]
    for keras in ("keras fn", "keras tob"):
        cells.append(ratio(medians[keras], medians["torch"]))
        cells.append(ratio(own(keras), own("torch")))
        fixed = [a - b for a, b in zip(medians[f"{keras} empty"], medians["torch empty"])]
        cells.append(f"{1e3 * statistics.median(fixed):.2f}")
        cells.append(ratio(cpu[keras], cpu["torch"]))
    return f"| {n} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    header = ["qubits", *(f"{name} ms" for name in STEPS)]
    for keras in ("fn", "tob"):
        header += [f"keras {keras} / torch", f"layer own {keras} / torch"]
        header += [f"keras {keras} fixed ms", f"keras {keras} / torch CPU"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n in args.qubits:
        lines.append(row(n, *measure(n, args.blocks, args.steps)))
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    print(
        f"\n{args.blocks} interleaved blocks of {args.steps} steps; ratios and differences: "
        "median over blocks. 'layer own' = step - its empty model's step; 'fixed' = the "
        "empty Keras step - the empty torch step; CPU: process time per step, all threads."
    )


if __name__ == "__main__":
    main()
