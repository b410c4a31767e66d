"""W1 train step: the compiled layer path against the QNode path and TensorFlow Quantum.

Contenders (each in its own process, as ``bench_w1.py`` runs them):

- ``router compiled``: ``qstore_pl.torch.TorchLayer`` on ``qstore.router`` (records the
  circuit once, binds each batch into the routed backend's compiled program);
- ``router``: ``qml.qnn.TorchLayer`` on the same router (the QNode path);
- ``router keras`` / ``router keras qnode``: ``qstore_pl.keras.KerasLayer`` (TensorFlow
  backend) with and without the compiled path, trained by a ``tf.function`` step as
  TFQ's contender is (``benchmarks/bench_keras_step.py`` adds ``train_on_batch`` and
  Keras's own fixed cost per step);
- ``TFQ 0.7.6`` with ``--tfq-python`` (``tfq.layers.PQC``, adjoint, ``tf.function``).

Every contender runs with ``OMP_WAIT_POLICY=PASSIVE`` (unless set): the workload
imports torch before qstore_pl, so torch's OpenMP threads would otherwise spin, and on
a shared machine spinning threads multiply step times (W1 at 4 qubits: 92-112 ms
spinning vs 12-16 ms passive beside other jobs); TFQ gets the same setting.

The machine is shared, so contenders are interleaved: each round runs every contender
once per width (A B C ... A B C ...), each round gives ratios, and the table prints the
median step time per contender and the median of the per-round ratios.

``--load 0 1`` measures every contender quiet (no busy process of the benchmark's own;
other jobs may still run) and beside one busy process (``python -c "while True:
pass"``, ``busy.py``), the loads interleaved within each round and width; the table
then has one column per contender and load, and the ratios compare contenders
measured under the same load in the same round.

    python benchmarks/bench_compiled.py --qubits 4 8 12 16 --rounds 3 \\
        --tfq-python /work/tfq-venv/bin/python
    python benchmarks/bench_compiled.py --qubits 4 8 12 16 --rounds 2 --load 0 1 \\
        --tfq-python /work/tfq-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from bench_w1 import TFQ, machine, run_contender
from busy import add_load_option, busy_processes

HERE = Path(__file__).parent
COMPILED, QNODE, KERAS, KERAS_QNODE = (
    "router compiled",
    "router",
    "router keras",
    "router keras qnode",
)
#: (label, numerator, denominator): ratio > 1 means the denominator is faster
RATIOS = (
    ("compiled vs TFQ", TFQ, COMPILED),
    ("compiled vs QNode path", QNODE, COMPILED),
    ("keras / torch compiled", KERAS, COMPILED),
    ("keras compiled vs keras QNode", KERAS_QNODE, KERAS),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per contender run")
    parser.add_argument("--min-steps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--tfq-python", help="python of a virtualenv with tensorflow-quantum")
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=[COMPILED, QNODE, KERAS, KERAS_QNODE, TFQ],
        help="measure only these (default: all)",
    )
    add_load_option(parser, "each contender")
    args = parser.parse_args()
    if any(load < 0 for load in args.load):
        parser.error("--load takes numbers of busy processes (0 or more)")
    loads = sorted(set(args.load))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # run_contender passes it on
    contenders = [COMPILED, QNODE]
    if not args.no_keras:
        contenders += [KERAS, KERAS_QNODE]
    if args.tfq_python:
        contenders.append(TFQ)
    if args.contenders:
        contenders = [c for c in contenders if c in args.contenders]
    rows: dict[tuple[int, int], dict[str, list[dict]]] = {
        (n, load): {c: [] for c in contenders} for n in args.qubits for load in loads
    }
    for r in range(args.rounds):
        for n in args.qubits:
            for load in loads:
                for contender in contenders:
                    with busy_processes(load):
                        result = run_contender(contender, n, "train", args)
                    rows[n, load][contender].append(result | {"load": load})
                    shown = result.get("median_ms", result.get("error"))
                    busy = f" busy {load}" if load else ""
                    print(f"round {r + 1} n={n}{busy} {contender}: {shown}", flush=True)
    name = "compiled" if loads == [0] else "compiled_load"
    out = HERE / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    flat = [x for by in rows.values() for results in by.values() for x in results]
    out.write_text(json.dumps({"machine": machine(), "rows": flat}, indent=1))
    if loads == [0]:
        print(table({n: rows[n, 0] for n in args.qubits}, contenders, args.rounds))
    else:
        print(load_table(rows, contenders, args.qubits, loads, args.rounds))


def table(rows, contenders, rounds: int) -> str:
    """Median ms per contender, the compiled path's first call, and per-round ratios."""
    present = [r for r in RATIOS if r[1] in contenders and r[2] in contenders]
    header = ["qubits", *[f"{c} ms" for c in contenders], "compiled first call"]
    header += [label for label, _, _ in present]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n, by in rows.items():
        cells = [str(n)]
        for c in contenders:
            times = [x["median_ms"] for x in by[c] if "median_ms" in x]
            cells.append(f"{statistics.median(times):,.1f}" if times else "error")
        firsts = [x["first_s"] for x in by[COMPILED] if "first_s" in x]
        cells.append(f"{max(firsts):.2f} s (worst)" if firsts else "-")
        cells += [_ratio_cell(by[num], by[den]) for _, num, den in present]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{rounds} interleaved round(s); ratios: median over rounds (min-max).")
    return "\n".join(lines)


def load_table(rows, contenders, widths, loads, rounds: int) -> str:
    """Median ms per contender and load, and each ratio under each load (same rounds)."""
    present = [r for r in RATIOS if r[1] in contenders and r[2] in contenders]
    if TFQ in contenders and KERAS in contenders:
        present.insert(1, ("keras vs TFQ", TFQ, KERAS))
    header = ["qubits", *[f"{c} {_busy(load)} ms" for c in contenders for load in loads]]
    header += [f"{label} {_busy(load)}" for label, _, _ in present for load in loads]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n in widths:
        cells = [str(n)]
        for c in contenders:
            for load in loads:
                times = [x["median_ms"] for x in rows[n, load][c] if "median_ms" in x]
                cells.append(f"{statistics.median(times):,.1f}" if times else "error")
        for _, num, den in present:
            for load in loads:
                by = rows[n, load]
                cells.append(_ratio_cell(by[num], by[den]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"\n{rounds} interleaved round(s); 'busy k': beside k busy processes; ratios: "
        "median over rounds (min-max) of contenders measured under the same load."
    )
    return "\n".join(lines)


def _busy(load: int) -> str:
    return "quiet" if load == 0 else f"{load} busy"


def _ratio_cell(numerators: list[dict], denominators: list[dict]) -> str:
    ratios = [
        a["median_ms"] / b["median_ms"]
        for a, b in zip(numerators, denominators)
        if "median_ms" in a and "median_ms" in b
    ]
    if not ratios:
        return "-"
    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):.2f}x{spread}"


if __name__ == "__main__":
    main()
