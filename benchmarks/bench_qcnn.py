"""QCNN on excited cluster states (TFQ's tutorial) side by side with TensorFlow Quantum.

qstore_pl: ``qstore_pl.keras.PQC`` with the ``QCNN`` template on ``qstore.router``,
Keras 3 (``KERAS_BACKEND``, default tensorflow); TFQ: ``benchmarks/qcnn_tfq.py`` run
by ``--tfq-python`` (an interpreter with TensorFlow Quantum 0.7.6). Same data
construction, split, loss (MSE on ±1), optimiser (Adam, TFQ's 0.02 on exponents =
0.02π on angles) and batch size (16); the random draws differ.

    python benchmarks/bench_qcnn.py --epochs 12 --tfq-python /work/tfq-venv/bin/python

Each contender (qstore_pl's compiled path, optionally its tape path with
``--contenders compiled tapes tfq``, and TFQ) trains in its own process; their
epochs alternate (A B A B ...), so they share the machine's load. Prints seconds per
epoch (median after the first) and accuracies with ratios to TFQ, writes
``benchmarks/results/qcnn.json`` and ``qcnn.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def build_qstore(seed: int, path: str):
    """qstore_pl's model and data: ``(train_one_epoch, peer name)``.

    ``path="tapes"`` runs the layer's tape path (one tape per sample), as before the
    compiled circuit-input path existed.
    """
    import keras
    import pennylane as qml

    from qstore_pl.circuits import ParametrizedCircuit, encode_circuits
    from qstore_pl.datasets.quantum import excited_cluster_states
    from qstore_pl.keras import PQC
    from qstore_pl.templates import QCNN

    keras.utils.set_random_seed(seed)
    train, y_train, test, y_test = excited_cluster_states(8, seed=seed)
    tensors = encode_circuits(train + test).astype("float32")
    x_train, x_test = tensors[: len(train)], tensors[len(train) :]
    wires = list(range(8))
    circuit = ParametrizedCircuit.from_function(lambda w: QCNN(w, wires), w=QCNN.shape(8))
    inputs = keras.Input(tensors.shape[1:])
    layer = PQC(circuit, [qml.Z(QCNN.readout_wire(wires))])
    if path == "tapes":
        layer.batch.compiled = None
    model = keras.Model(inputs, layer(inputs))

    def accuracy(y_true, y_pred):
        same = keras.ops.sign(keras.ops.reshape(y_pred, (-1,))) == keras.ops.reshape(y_true, (-1,))
        return keras.ops.mean(keras.ops.cast(same, "float32"))

    model.compile(keras.optimizers.Adam(0.02 * np.pi), loss="mse", metrics=[accuracy])

    def epoch() -> dict:
        start = time.perf_counter()
        logs = model.fit(
            x_train, y_train, batch_size=16, epochs=1, verbose=0, validation_data=(x_test, y_test)
        ).history
        return {
            "seconds": time.perf_counter() - start,
            "train_accuracy": float(logs["accuracy"][0]),
            "test_accuracy": float(logs["val_accuracy"][0]),
            "path": layer.batch.path,
        }

    peer = f"qstore.router PQC, {path} (Keras {keras.__version__}, {keras.backend.backend()})"
    return epoch, peer


def serve(epoch, peer: str) -> None:
    """Train one epoch per ``epoch`` line on stdin; answer each with a JSON line.

    Both contenders' workers speak this (``qcnn_tfq.py --serve`` too), so that
    :func:`main` can run their epochs in turn, under the same machine load.
    """
    print(json.dumps({"ready": peer}), flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        print(json.dumps(epoch()), flush=True)


class Worker:
    """A contender in its own process, training one epoch per request."""

    def __init__(self, cmd: list[str], env: dict):
        self.process = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.peer = self._answer()["ready"]
        self.rows: list[dict] = []

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"worker {self.process.args} ended: {self.process.wait()}")

    def epoch(self) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write("epoch\n")
        self.process.stdin.flush()
        row = {"epoch": len(self.rows) + 1, **self._answer()}
        self.rows.append(row)
        return row

    def close(self) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)
        return {"peer": self.peer, "epochs": self.rows}


def start_workers(contenders: list[str], seed: int, tfq_python: str | None) -> list[Worker]:
    workers = []
    for contender in contenders:
        if contender == "tfq":
            if not tfq_python:
                continue
            env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
            cmd = [tfq_python, str(HERE / "qcnn_tfq.py"), "--serve", "--seed", str(seed)]
        else:
            env = dict(os.environ)
            cmd = [sys.executable, str(Path(__file__)), "--worker", contender, "--seed", str(seed)]
        workers.append(Worker(cmd, env))
    return workers


def summary(result: dict) -> dict:
    epochs = result["epochs"]
    steady = [r["seconds"] for r in epochs[1:]] or [epochs[0]["seconds"]]
    return {
        "peer": result["peer"],
        "first_epoch_s": epochs[0]["seconds"],
        "epoch_s": float(np.median(steady)),
        "final_test_accuracy": epochs[-1]["test_accuracy"],
        "best_test_accuracy": max(r["test_accuracy"] for r in epochs),
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        epochs = [r["epoch"] for r in result["epochs"]]
        ax.plot(epochs, [r["test_accuracy"] for r in result["epochs"]], label=result["peer"])
    ax.set(xlabel="epoch", ylabel="test accuracy", title="QCNN, excited cluster states (8 qubits)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tfq-python", help="interpreter with TensorFlow Quantum")
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=["compiled", "tfq"],
        choices=["compiled", "tapes", "tfq"],
        help="qstore_pl's compiled path, its tape path, TFQ (needs --tfq-python)",
    )
    parser.add_argument("--worker", choices=["compiled", "tapes"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(*build_qstore(args.seed, args.worker))
        return
    RESULTS.mkdir(exist_ok=True)
    workers = start_workers(args.contenders, args.seed, args.tfq_python)
    for _ in range(args.epochs):  # A B A B ...: both see the same load
        for worker in workers:
            row = worker.epoch()
            print(f"{worker.peer}: {row}", flush=True)
    results = [worker.close() for worker in workers]
    rows = [summary(r) for r in results]
    base = rows[-1]  # TFQ when it runs
    header = ("peer", "1st epoch s", "epoch s", "x last", "test acc", "best")
    print("\n{:<64} {:>11} {:>8} {:>7} {:>8} {:>6}".format(*header))
    for row in rows:
        ratio = row["epoch_s"] / base["epoch_s"]
        print(
            f"{row['peer']:<64} {row['first_epoch_s']:>11.2f} {row['epoch_s']:>8.2f} "
            f"{ratio:>7.2f} {row['final_test_accuracy']:>8.3f} {row['best_test_accuracy']:>6.3f}"
        )
    (RESULTS / "qcnn.json").write_text(json.dumps({"runs": results, "summary": rows}, indent=1))
    plot(results, RESULTS / "qcnn.png")
    print(f"wrote {RESULTS / 'qcnn.json'} and {RESULTS / 'qcnn.png'}")


if __name__ == "__main__":
    main()
