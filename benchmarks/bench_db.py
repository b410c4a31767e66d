"""State database at scale: upsert and query throughput of the embedded store
(Qdrant local mode) for 10^4 and 10^5 states of 8-10 qubits, and the overhead a
StateRecorder adds to a training step.

    python benchmarks/bench_db.py [--sizes 10000 100000] [--qubits 8 10] [--disk-size 10000]

Prints a table and writes benchmarks/results/db.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

from qstore_pl.db import StateRecorder, open_store
from qstore_pl.db.encoding import encode, namespace_for
from qstore_pl.db.store import EncodedState

RESULTS = Path(__file__).parent / "results" / "db.json"
CHUNK = 1000


def random_states(rng, count: int, n: int) -> np.ndarray:
    v = rng.normal(size=(count, 2**n)) + 1j * rng.normal(size=(count, 2**n))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def store_scale(size: int, n: int, path) -> dict:
    """Upsert ``size`` random states of ``n`` qubits, then time queries."""
    rng = np.random.default_rng(0)
    store = open_store(path=path)
    seconds = 0.0
    for start in range(0, size, CHUNK):
        states = random_states(rng, min(CHUNK, size - start), n)
        entries = [
            EncodedState(
                str(uuid.uuid4()),
                namespace_for("pure", n),
                encode(s, "pure")[0],
                {"backend": ["a", "b"][i % 2], "kind": "pure", "n_qubits": n},
            )
            for i, s in enumerate(states)
        ]
        t0 = time.perf_counter()
        store.write(entries)
        seconds += time.perf_counter() - t0
    queries = random_states(rng, 10, n)
    t0 = time.perf_counter()
    for q in queries:
        store.query_similar(q, top_k=5)
    query_ms = (time.perf_counter() - t0) / len(queries) * 1e3
    t0 = time.perf_counter()
    for q in queries[:3]:
        store.query_similar(q, top_k=5, filter={"backend": "a"})
    filtered_ms = (time.perf_counter() - t0) / 3 * 1e3
    store.close()
    return {
        "states": size,
        "qubits": n,
        "where": "disk" if path else "memory",
        "upsert_per_s": size / seconds,
        "query_ms": query_ms,
        "filtered_query_ms": filtered_ms,
    }


def recorder_overhead(n: int = 8, batch: int = 32, steps: int = 8) -> dict:
    """ms per training step (W1-like: RX encoding, 4 layers, batch 32) with and
    without a StateRecorder on the router."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, np.pi, (batch, n))

    def step_time(callbacks) -> float:
        dev = qml.device("qstore.router", wires=n, callbacks=callbacks)

        @qml.qnode(dev)
        def circuit(x, w):
            qml.AngleEmbedding(x, wires=range(n), rotation="X")
            qml.StronglyEntanglingLayers(w, wires=range(n))
            return qml.expval(qml.Z(0))

        w = pnp.array(rng.uniform(0, np.pi, (4, n, 3)), requires_grad=True)
        grad = qml.grad(lambda w: pnp.sum(circuit(x, w)))
        grad(w)  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            grad(w)
        return (time.perf_counter() - t0) / steps * 1e3

    plain = step_time([])
    recorder = StateRecorder(open_store(path=None), spool=tempfile.mktemp(suffix=".sqlite"))
    recorded = step_time([recorder])
    t0 = time.perf_counter()
    recorder.flush()
    flush_s = time.perf_counter() - t0
    stats = recorder.stats()
    recorder.close()
    return {
        "qubits": n,
        "batch": batch,
        "plain_ms": plain,
        "recorded_ms": recorded,
        "ratio": recorded / plain,
        "flush_after_s": flush_s,
        "states": stats.delivered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--qubits", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--disk-size", type=int, default=10_000)
    args = parser.parse_args()
    rows = []
    for n in args.qubits:
        for size in args.sizes:
            rows.append(store_scale(size, n, None))
            print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(store_scale(args.disk_size, args.qubits[0], tmp))
        print(rows[-1], flush=True)
    overhead = recorder_overhead()
    header = ("where", "qubits", "states", "upsert/s", "query ms", "filtered ms")
    print("\n{:<8}{:>7}{:>9}{:>10}{:>10}{:>13}".format(*header))
    for r in rows:
        print(
            f"{r['where']:<8}{r['qubits']:>7}{r['states']:>9}{r['upsert_per_s']:>10.0f}"
            f"{r['query_ms']:>10.1f}{r['filtered_query_ms']:>13.1f}"
        )
    print(
        f"\nrecorder overhead, {overhead['qubits']} qubits, batch {overhead['batch']}: "
        f"{overhead['plain_ms']:.0f} ms/step without, {overhead['recorded_ms']:.0f} ms/step "
        f"with ({overhead['ratio']:.2f}x); flush afterwards {overhead['flush_after_s']:.2f} s "
        f"for {overhead['states']} states"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"store": rows, "recorder": overhead}, indent=2))


if __name__ == "__main__":
    main()
