"""State database at scale: upsert and query throughput of the embedded store
(Qdrant local mode) with the search's recall@5 against brute-force fidelity over
every stored state, the recorder's replay speed after a crash, and the overhead a
StateRecorder adds to a training step.

    python benchmarks/bench_db.py [--sizes 10000 100000] [--qubits 4 8] [--disk-size 10000]
                                  [--filtered-queries 2] [--replay 15000]
    python benchmarks/bench_db.py --overhead-only   # the recorder's cost on a training step
    python benchmarks/bench_db.py --replay-only [--replay 15000]  # replay, thread and process
    python benchmarks/bench_db.py --replay-only --overhead-only --load 0 1  # idle and beside
                                                                  # one busy process

Queries: stored states times a random global phase (their nearest neighbour is
themselves, ranks 2-5 are the hard part) and random states. Filtered queries are
slow on the embedded store (Qdrant local mode evaluates filters in Python), hence
their own count. Prints a table and writes benchmarks/results/db.json.
``--load 0 1`` runs the replay and overhead parts on the idle machine and beside one
busy process (``python -c "while True: pass"``) and prints them side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pennylane as qml
from busy import add_load_option, busy_processes
from pennylane import numpy as pnp

from qstore_pl.db import StateRecorder, open_store
from qstore_pl.db.encoding import encode_rows, namespace_for
from qstore_pl.db.spool import Spool
from qstore_pl.db.store import EncodedState

RESULTS = Path(__file__).parent / "results" / "db.json"
GATES = {"RX", "RY", "RZ", "Rot", "CNOT"}
CHUNK = 1000
TOP_K = 5


def random_states(rng, count: int, n: int) -> np.ndarray:
    v = rng.normal(size=(count, 2**n)) + 1j * rng.normal(size=(count, 2**n))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunk_states(n: int, chunk: int) -> np.ndarray:
    """The states of one chunk, regenerated on demand (brute force needs them all)."""
    return random_states(np.random.default_rng((n, chunk)), CHUNK, n)


def state_id(n: int, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{n}/{index}"))


def brute_force_top(queries: np.ndarray, size: int, n: int, even_only: bool) -> list[set]:
    """The ids of the TOP_K states of highest fidelity to each query, over all stored."""
    best = [[] for _ in queries]  # (fidelity, index)
    for chunk in range(size // CHUNK):
        fidelity = np.abs(chunk_states(n, chunk) @ np.conj(queries).T) ** 2
        for q in range(len(queries)):
            column = fidelity[:, q].copy()
            if even_only:
                column[1::2] = -1.0
            top = np.argpartition(-column, TOP_K)[:TOP_K]
            best[q] += [(column[i], chunk * CHUNK + i) for i in top]
            best[q] = sorted(best[q], reverse=True)[:TOP_K]
    return [{state_id(n, i) for _, i in b} for b in best]


def store_scale(size: int, n: int, path, filtered_queries: int) -> dict:
    """Upsert ``size`` random states of ``n`` qubits, then time queries and measure
    their recall@5 against brute force."""
    store = open_store(path=path)
    seconds = 0.0
    for chunk in range(size // CHUNK):
        vectors, _ = encode_rows(chunk_states(n, chunk), "pure")
        entries = [
            EncodedState(
                state_id(n, chunk * CHUNK + i),
                namespace_for("pure", n),
                v,
                {"backend": "ab"[i % 2], "kind": "pure", "n_qubits": n},
            )
            for i, v in enumerate(vectors)
        ]
        t0 = time.perf_counter()
        store.write(entries)
        seconds += time.perf_counter() - t0
    rng = np.random.default_rng(1)
    picks = rng.choice(size, 5, replace=False)
    stored = np.stack([chunk_states(n, i // CHUNK)[i % CHUNK] for i in picks])
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, (5, 1)))
    queries = np.concatenate([stored * phases, random_states(rng, 5, n)])

    def run(batch: np.ndarray, filter) -> tuple[float, float]:
        truth = brute_force_top(batch, size, n, even_only=filter is not None)
        t0 = time.perf_counter()
        found = [{h.id for h in store.query_similar(q, TOP_K, filter)} for q in batch]
        ms = (time.perf_counter() - t0) / len(batch) * 1e3
        return ms, float(np.mean([len(f & t) / TOP_K for f, t in zip(found, truth)]))

    query_ms, recall = run(queries, None)
    filtered_ms, filtered_recall = run(queries[:filtered_queries], {"backend": "a"})
    store.close()
    return {
        "states": size,
        "qubits": n,
        "where": "disk" if path else "memory",
        "upsert_per_s": size / seconds,
        "query_ms": query_ms,
        "recall_at_5": recall,
        "filtered_query_ms": filtered_ms,
        "filtered_recall_at_5": filtered_recall,
        "filtered_queries": filtered_queries,
    }


def replay_speed(count: int, n: int = 4, batch: int = 8, delivery: str = "thread") -> dict:
    """States/s a new recorder sends to an embedded store on disk from a spool that a
    killed process left behind, as this version spools them (calls of ``batch``
    states: the backend's amplitudes and the circuit's facts, encoded on replay), from
    the recorder's creation to the end of its flush (``delivery="process"``: the
    delivery process's start-up included)."""
    from qstore_pl.db.circuits import facts_of  # here: --overhead-only runs older versions
    from qstore_pl.db.spool import CircuitEntry

    rng = np.random.default_rng(2)
    n_calls = count // batch
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "spool.sqlite")
        for _ in range(n_calls):
            x, w = rng.uniform(0, np.pi, (batch, n)), rng.uniform(0, np.pi, (2, n, 3))
            tape = qml.tape.make_qscript(
                lambda x, w: (
                    qml.AngleEmbedding(x, wires=range(n), rotation="X"),
                    qml.StronglyEntanglingLayers(w, wires=range(n)),
                )
            )(x, w)
            (tape,), _ = qml.transforms.decompose(tape, gate_set=GATES)  # as the router runs it
            meta = {"backend": "qstore.batched", "source": "simulated", "run": "bench"}
            amplitudes = random_states(rng, batch, n).astype(np.complex64)
            entry = CircuitEntry(str(uuid.uuid4()), batch, b"", meta, amplitudes, facts_of(tape))
            spool.append([], [entry])
        spool.close()
        store = open_store(path=Path(tmp) / "store")
        t0 = time.perf_counter()
        recorder = StateRecorder(store, spool=Path(tmp) / "spool.sqlite", delivery=delivery)
        recorder.flush()
        seconds = time.perf_counter() - t0
        recorder.close()
        stored = store.stats().states
        store.close()
    states = n_calls * batch
    return {
        "delivery": delivery,
        "states": states,
        "stored": stored,
        "seconds": seconds,
        "per_s": states / seconds,
    }


def recorder_overhead(n: int = 8, batch: int = 32, steps: int = 20, repeats: int = 7) -> dict:
    """ms per training step (W1-like: RX encoding, 4 layers, batch 32, new inputs
    every step) without a recorder (``plain``), with one whose store is not written
    meanwhile (``spool``: the synchronous durable write on the training thread alone),
    with one delivering to an embedded store on disk through its delivery process
    (``process``, the default for such a store) and with one delivering to an
    in-memory embedded store on its own thread (``thread``, the only way for a store in
    memory).

    Blocks of ``steps`` steps are interleaved (plain, spool, process, thread, plain,
    ...) and each recorder is flushed between blocks, untimed; the ratios are of
    medians over ``repeats`` blocks, so drift on a busy machine hits every variant
    alike. ``flush_s`` is the median time to flush what a delivering block left, the
    store's work that did not overlap with training. ``cpu``: the training process's
    CPU time per step (all its threads), less sensitive than wall time to other jobs
    on the machine; ``child_cpu_ms``: the delivery process's CPU time per step of the
    ``process`` blocks (work moved to another core, not removed)."""
    rng = np.random.default_rng(1)

    def stepper(callbacks):
        dev = qml.device("qstore.router", wires=n, callbacks=callbacks)

        @qml.qnode(dev)
        def circuit(x, w):
            qml.AngleEmbedding(x, wires=range(n), rotation="X")
            qml.StronglyEntanglingLayers(w, wires=range(n))
            return qml.expval(qml.Z(0))

        w = pnp.array(rng.uniform(0, np.pi, (4, n, 3)), requires_grad=True)
        grad = qml.grad(lambda w, x: pnp.sum(circuit(x, w)), argnums=0)
        grad(w, rng.uniform(0, np.pi, (batch, n)))  # warm-up
        return lambda x: grad(w, x)

    with tempfile.TemporaryDirectory() as tmp:
        held = StateRecorder(  # nothing is sent before the flush between blocks
            open_store(path=None),
            spool=Path(tmp) / "held.sqlite",
            max_delay=3600,
            batch_size=steps * batch + 1,
        )
        by_process = StateRecorder(
            open_store(path=Path(tmp) / "store"), spool=Path(tmp) / "p.sqlite"
        )
        by_thread = StateRecorder(open_store(path=None), spool=Path(tmp) / "t.sqlite")
        variants = {
            "plain": (stepper([]), None),
            "spool": (stepper([held]), held),
            "process": (stepper([by_process]), by_process),
            "thread": (stepper([by_thread]), by_thread),
        }
        by_process.flush()  # the delivery process has started
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        child_cpu: list[float] = []
        flushes: dict[str, list[float]] = {"process": [], "thread": []}
        for _ in range(repeats):
            for name, (step, recorder) in variants.items():
                inputs = rng.uniform(0, np.pi, (steps, batch, n))
                child0 = process_cpu_seconds(by_process.delivery_pid)
                t0, c0 = time.perf_counter(), time.process_time()
                for x in inputs:
                    step(x)
                times[name].append((time.perf_counter() - t0) / steps * 1e3)
                cpu[name].append((time.process_time() - c0) / steps * 1e3)
                if recorder is not None:
                    t0 = time.perf_counter()
                    recorder.flush()
                    if name in flushes:
                        flushes[name].append(time.perf_counter() - t0)
                if name == "process":
                    child = process_cpu_seconds(by_process.delivery_pid) - child0
                    child_cpu.append(child / steps * 1e3)
        recorders = (held, by_process, by_thread)
        stored = sum(r.stats().delivered for r in recorders)
        for recorder in recorders:
            recorder.close()
    median = {name: float(np.median(t)) for name, t in times.items()}
    median_cpu = {name: float(np.median(t)) for name, t in cpu.items()}
    return {
        "qubits": n,
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "ms": median,
        "ratio": {name: median[name] / median["plain"] for name in median},
        "cpu_ms": median_cpu,
        "cpu_ratio": {name: median_cpu[name] / median_cpu["plain"] for name in median},
        "child_cpu_ms": float(np.median(child_cpu)),
        "flush_s": {name: float(np.median(f)) for name, f in flushes.items()},
        "states": stored,
        "blocks_ms": times,
    }


def process_cpu_seconds(pid: int | None) -> float:
    """CPU time (user and system) a process has used so far, from /proc (Linux)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_overhead(overhead: dict) -> None:
    labels = {
        "plain": "no recorder",
        "spool": "spooling only",
        "process": "delivering, process (default, store on disk)",
        "thread": "delivering, thread (store in memory)",
    }
    print(
        f"recorder overhead, {overhead['qubits']} qubits, batch {overhead['batch']}, median "
        f"of {overhead['repeats']} interleaved blocks of {overhead['steps']} steps "
        f"({overhead['states']} states stored):"
    )
    print(f"{'':<46}{'ms/step':>9}{'ratio':>8}{'CPU ms':>9}{'CPU ratio':>11}")
    for name, label in labels.items():
        print(
            f"{label:<46}{overhead['ms'][name]:>9.1f}{overhead['ratio'][name]:>7.2f}x"
            f"{overhead['cpu_ms'][name]:>9.1f}{overhead['cpu_ratio'][name]:>10.2f}x"
        )
    flush = overhead["flush_s"]
    print(
        f"delivery process CPU per step: {overhead['child_cpu_ms']:.1f} ms (on another "
        f"core); flush after a block: process {flush['process']:.2f} s, thread "
        f"{flush['thread']:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--disk-size", type=int, default=10_000)
    parser.add_argument("--filtered-queries", type=int, default=2)
    parser.add_argument("--replay", type=int, default=15_000)
    parser.add_argument("--skip-overhead", action="store_true")
    add_load_option(parser, "the replay and overhead parts")
    parser.add_argument(
        "--overhead-only", action="store_true", help="only the recorder overhead (no json)"
    )
    parser.add_argument(
        "--replay-only", action="store_true", help="only the replay speed (no json)"
    )
    args = parser.parse_args()
    if any(load < 0 for load in args.load):
        parser.error("--load takes numbers of busy processes (0 or more)")
    if args.replay_only or args.overhead_only:
        for load in args.load:
            with busy_processes(load):
                if args.replay_only:
                    for mode in ("thread", "process"):
                        print(replay_speed(args.replay, delivery=mode) | {"load": load})
                if args.overhead_only:
                    print(f"beside {load} busy process(es), load average {os.getloadavg()[0]:.1f}")
                    print_overhead(recorder_overhead())
        return
    rows = []
    for n in args.qubits:
        for size in args.sizes:
            rows.append(store_scale(size, n, None, args.filtered_queries))
            print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(store_scale(args.disk_size, args.qubits[0], tmp, args.filtered_queries))
        print(rows[-1], flush=True)
    replay, overheads = [], []
    for load in args.load:
        with busy_processes(load):
            replay += [
                replay_speed(args.replay, delivery=mode) | {"load": load}
                for mode in ("thread", "process")
            ]
            if not args.skip_overhead:
                overheads.append(recorder_overhead() | {"load": load})
    print(replay, flush=True)
    header = (
        "where",
        "qubits",
        "states",
        "upsert/s",
        "query ms",
        "recall@5",
        "filtered ms",
        "f.recall@5",
    )
    print("\n{:<8}{:>7}{:>9}{:>10}{:>10}{:>10}{:>13}{:>12}".format(*header))
    for r in rows:
        print(
            f"{r['where']:<8}{r['qubits']:>7}{r['states']:>9}{r['upsert_per_s']:>10.0f}"
            f"{r['query_ms']:>10.1f}{r['recall_at_5']:>10.3f}{r['filtered_query_ms']:>13.1f}"
            f"{r['filtered_recall_at_5']:>12.3f}"
        )
    for r in replay:
        print(
            f"replay after a crash ({r['delivery']}, {r['load']} busy): {r['states']} states in "
            f"{r['seconds']:.1f} s ({r['per_s']:.0f} states/s) into the embedded store on disk"
        )
    for overhead in overheads:
        print(f"beside {overhead['load']} busy process(es):")
        print_overhead(overhead)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"store": rows, "replay": replay, "recorder": overheads}, indent=2)
    )


if __name__ == "__main__":
    main()
