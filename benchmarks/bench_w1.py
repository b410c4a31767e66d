"""W1 side by side: qstore.router against every PennyLane device and TensorFlow Quantum.

Workload W1 (DESIGN.md): batch 32, RX encoding, 4 layers of RY/RZ + ring of CNOTs,
<Z> on every qubit, Linear(n -> 2), cross-entropy, Adam. Measured per width: the
train step and the forward batch, for

- ``router``: ``qml.device("qstore.router", wires=n)`` with default settings;
- ``direct:<backend>``: the backend the router picked, called directly (the router's
  overhead is the ratio of the two);
- ``lightning adjoint`` (with and without ``device_vjp``) and
  ``default.qubit backprop``: the PennyLane devices a user would pick by hand;
- ``TFQ 0.7.6`` when ``--tfq-python`` names an interpreter with TensorFlow Quantum.

Every contender runs in its own process (fresh memory high-water mark, no shared
caches): one first call (compilation, calibration), then steps until ``--seconds``
have passed (at least ``--min-steps``). A contender is skipped at a width where its
previous width, scaled by 2 per qubit, predicts more than ``--max-step-seconds``.

``--load 0 1 2`` measures each contender beside 0, 1 and 2 busy processes (``python -c
"while True: pass"``, started before the contender and stopped after it) and prints
idle and loaded times side by side with their ratios (train mode unless ``--modes``).

    python benchmarks/bench_w1.py                                  # 4 8 12 16 20
    python benchmarks/bench_w1.py --qubits 4 8 --modes train --tfq-python ~/tfq/bin/python
    python benchmarks/bench_w1.py --qubits 4 8 12 16 --load 0 1 2  # busy machine

Writes ``benchmarks/results/w1.json`` and ``w1.png`` (``w1_load.json`` and
``w1_load.png`` with ``--load``) and prints a table with ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from busy import add_load_option, busy_processes

HERE = Path(__file__).parent
RESULTS = HERE / "results"
PEERS = ("lightning adjoint", "lightning adjoint+vjp", "default.qubit backprop")
TFQ = "TFQ 0.7.6"
KERAS = "router keras"  # qstore_pl.keras.KerasLayer on the router (w1_workload.KERAS)


def run_contender(contender: str, n: int, mode: str, args) -> dict:
    """One contender at one width, in a fresh process."""
    if contender == TFQ:
        cmd = [args.tfq_python, str(HERE / "w1_tfq.py")]
    else:
        cmd = [sys.executable, str(HERE / "w1_workload.py"), "--contender", contender]
    cmd += ["--qubits", str(n), "--mode", mode, "--seconds", str(args.seconds)]
    cmd += ["--min-steps", str(args.min_steps)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"contender": contender, "qubits": n, "mode": mode, "error": "timeout"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"contender": contender, "qubits": n, "mode": mode, "error": tail[0][:120]}
    return json.loads(lines[-1])


def sweep(args) -> list[dict]:
    contenders = ["router", *([] if args.no_keras else [KERAS]), *PEERS]
    contenders += [TFQ] if args.tfq_python else []
    if args.contenders:
        contenders = [c for c in contenders if c in args.contenders]
    loaded = args.load != [0]
    rows: list[dict] = []
    last: dict[tuple[str, str, int], tuple[int, float]] = {}
    for n in args.qubits:
        for mode in args.modes:
            for load in args.load:
                chosen = None
                for contender in contenders:
                    previous = last.get((contender, mode, load))
                    if previous and previous[1] * 2.0 ** (n - previous[0]) > args.max_step_seconds:
                        rows.append(
                            {"contender": contender, "qubits": n, "mode": mode, "error": "skipped"}
                            | {"load": load}
                        )
                        continue
                    with busy_processes(load):
                        row = run_contender(contender, n, mode, args) | {"load": load}
                    rows.append(row)
                    print(_line(row), flush=True)
                    if "median_ms" in row:
                        last[contender, mode, load] = (n, row["median_ms"] / 1e3)
                    if contender == "router" and row.get("chosen"):
                        chosen = row["chosen"][0]
                if chosen and not loaded:
                    row = run_contender(f"direct:{chosen}", n, mode, args) | {"load": load}
                    rows.append(row)
                    print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    busy = f"busy {row['load']}  " if row.get("load") is not None else ""
    head = f"  n={row['qubits']:<3}{row['mode']:<8}{busy}{row['contender']:<34}"
    if "error" in row:
        return head + row["error"]
    return (
        head + f"{row['median_ms']:>10.1f} ms/step  (CPU {row.get('cpu_ms', 0):.1f} ms)  "
        f"first {row['first_s']:.2f} s  "
        f"peak {row['peak_rss_mb']:.0f} MB"
    )


def table(rows: list[dict], mode: str) -> str:
    """Markdown table for one mode: ms per step, ratios, first call and peak memory."""
    by = {(r["contender"], r["qubits"]): r for r in rows if r["mode"] == mode}
    widths = sorted({r["qubits"] for r in rows if r["mode"] == mode})
    names = [c for c in ["router", KERAS, TFQ, *PEERS] if any((c, n) in by for n in widths)]

    def cell(name, n):
        r = by.get((name, n))
        if r is None:
            return "-"
        if "error" in r:
            return r["error"]
        return f"{r['median_ms']:,.1f}"

    header = "| qubits | " + " | ".join(f"{c} ms" for c in names)
    header += " | router vs TFQ | keras vs TFQ | router vs best PL | router overhead | first call"
    header += " | peak RSS |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for n in widths:
        router = by.get(("router", n), {})
        ms = router.get("median_ms")
        tfq = by.get((TFQ, n), {}).get("median_ms")
        keras_ms = by.get((KERAS, n), {}).get("median_ms")
        peers = [by[(p, n)]["median_ms"] for p in PEERS if "median_ms" in by.get((p, n), {})]
        direct = next(
            (r for (c, q), r in by.items() if q == n and c.startswith("direct:")), {}
        ).get("median_ms")
        overhead = (
            f"{100 * (ms / direct - 1):+.0f}% ({router['chosen'][0]})" if ms and direct else "-"
        )
        first = f"{router['first_s']:.2f} s" if ms else "-"
        rss = f"{router['peak_rss_mb']:.0f} MB" if ms else "-"
        cells = [cell(c, n) for c in names]
        best = min(peers) if peers else None
        lines.append(
            f"| {n} | "
            + " | ".join(cells)
            + f" | {_ratio(tfq, ms)} | {_ratio(tfq, keras_ms)} | {_ratio(best, ms)} | {overhead} "
            f"| {first} | {rss} |"
        )
    return "\n".join(lines)


def load_table(rows: list[dict], mode: str, loads: list[int]) -> str:
    """Markdown table for one mode: each contender's ms per step beside each number of
    busy processes, with the ratio to its own idle time, and the router against the
    fastest other contender under the same load."""
    by = {
        (r["contender"], r["qubits"], r["load"]): r
        for r in rows
        if r["mode"] == mode and "median_ms" in r
    }
    widths = sorted({r["qubits"] for r in rows if r["mode"] == mode})
    names = [c for c in ["router", KERAS, TFQ, *PEERS] if any(k[0] == c for k in by)]
    others = [c for c in names if c != "router"]
    header = "| qubits | " + " | ".join(f"{name} {_busy(load)}" for name in names for load in loads)
    header += " | " + " | ".join(f"router vs best other {_busy(load)}" for load in loads) + " |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for n in widths:
        cells = []
        for name in names:
            idle = by.get((name, n, 0), {}).get("median_ms")
            for load in loads:
                ms = by.get((name, n, load), {}).get("median_ms")
                if ms is None:
                    cells.append("-")
                elif load == 0 or idle is None:
                    cells.append(f"{ms:,.1f}")
                else:
                    cells.append(f"{ms:,.1f} ({ms / idle:.1f}x)")
        for load in loads:
            router = by.get(("router", n, load), {}).get("median_ms")
            best = [by[c, n, load]["median_ms"] for c in others if (c, n, load) in by]
            cells.append(_ratio(min(best), router) if best else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _busy(load: int) -> str:
    return "idle ms" if load == 0 else f"{load} busy ms"


def plot_load(rows: list[dict], mode: str, loads: list[int], path: Path) -> None:
    """ms per step against busy processes, one line per contender and width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = sorted({r["contender"] for r in rows if r["mode"] == mode and "median_ms" in r})
    for name in names:
        for n in sorted({r["qubits"] for r in rows}):
            points = sorted(
                (r["load"], r["median_ms"])
                for r in rows
                if r["mode"] == mode
                and r["contender"] == name
                and r["qubits"] == n
                and "median_ms" in r
            )
            if points:
                style = "-o" if name.startswith("router") else "--."
                ax.plot(*zip(*points), style, label=f"{name}, {n} qubits")
    ax.set_yscale("log")
    ax.set_xticks(loads)
    ax.set_xlabel("busy processes beside the training process")
    ax.set_ylabel("ms per step" if mode == "train" else "ms per forward batch")
    ax.set_title(f"W1 {mode} under load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _ratio(other: float | None, ms: float | None) -> str:
    return f"{other / ms:.2f}x" if ms and other else "-"


def plot(rows: list[dict], modes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.5), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        names = sorted({r["contender"] for r in rows if r["mode"] == mode})
        for name in names:
            points = sorted(
                (r["qubits"], r["median_ms"])
                for r in rows
                if r["mode"] == mode and r["contender"] == name and "median_ms" in r
            )
            if points:
                style = "-o" if name in ("router", KERAS, TFQ) else "--."
                ax.plot(*zip(*points), style, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("qubits")
        ax.set_ylabel("ms per step" if mode == "train" else "ms per forward batch")
        ax.set_title(f"W1 {mode}, batch 32, 4 layers")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> str:
    from qstore_pl.router.calibration.fit import machine_fingerprint

    f = machine_fingerprint()
    return f"{f['cpu']}, {f['cores']} cores, Python {f['python']}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 12, 16, 20])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=None,
        help="train and/or forward (default: both; train only with --load)",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="time per contender")
    parser.add_argument("--min-steps", type=int, default=2)
    parser.add_argument("--max-step-seconds", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--merge", action="store_true", help="keep other widths' results")
    parser.add_argument("--tfq-python", help="python of a virtualenv with tensorflow-quantum")
    add_load_option(parser, "each contender")
    parser.add_argument("--no-keras", action="store_true", help="leave out the Keras layer")
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=["router", KERAS, *PEERS, TFQ],
        help="measure only these (default: all)",
    )
    args = parser.parse_args()
    if any(load < 0 for load in args.load):
        parser.error("--load takes numbers of busy processes (0 or more)")
    if args.tfq_python and not Path(args.tfq_python).exists():
        parser.error(f"--tfq-python {args.tfq_python}: no such interpreter")
    args.load = sorted(set(args.load))
    loaded = args.load != [0]
    args.modes = args.modes or (["train"] if loaded else ["train", "forward"])
    print(f"W1 on {machine()}")
    rows = sweep(args)
    RESULTS.mkdir(exist_ok=True)
    name = "w1_load" if loaded else "w1"
    if args.merge and (RESULTS / f"{name}.json").exists():  # replace only what was re-measured
        done = {(r["qubits"], r["mode"], r.get("load")) for r in rows}
        old = json.loads((RESULTS / f"{name}.json").read_text())["rows"]
        rows = [r for r in old if (r["qubits"], r["mode"], r.get("load")) not in done] + rows
        args.modes = sorted({r["mode"] for r in rows}, reverse=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"machine": machine(), "rows": rows}, indent=1)
    )
    for mode in args.modes:
        if loaded:
            loads = sorted({r["load"] for r in rows if r["mode"] == mode})
            print(f"\nW1 {mode} beside busy processes (median ms; (Nx): against its idle time;")
            print("router vs best other > 1 means qstore.router is faster under that load)")
            print(load_table(rows, mode, loads))
            plot_load(rows, mode, loads, RESULTS / f"w1_load_{mode}.png")
            print(f"\nplot: {RESULTS / f'w1_load_{mode}.png'}")
        else:
            print(f"\nW1 {mode} (median ms; ratios > 1 mean qstore.router is faster)")
            print(table(rows, mode))
    if not loaded:
        plot(rows, args.modes, RESULTS / "w1.png")
        print(f"\nplot: {RESULTS / 'w1.png'}")


if __name__ == "__main__":
    main()
