"""QCNN on excited cluster states (TFQ's tutorial) side by side with TensorFlow Quantum.

qstore_pl: ``qstore_pl.keras.PQC`` with the ``QCNN`` template on ``qstore.router``,
Keras 3 (``KERAS_BACKEND``, default tensorflow); TFQ: ``benchmarks/qcnn_tfq.py`` run
by ``--tfq-python`` (an interpreter with TensorFlow Quantum 0.7.6). Same data
construction, split, loss (MSE on ±1), optimiser (Adam, TFQ's 0.02 on exponents =
0.02π on angles) and batch size (16); the random draws differ.

    python benchmarks/bench_qcnn.py --epochs 12 --tfq-python /work/tfq-venv/bin/python

Prints seconds per epoch and accuracies with ratios, writes
``benchmarks/results/qcnn.json`` and ``qcnn.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def run_qstore(epochs: int, seed: int) -> dict:
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
    model = keras.Model(inputs, PQC(circuit, [qml.Z(QCNN.readout_wire(wires))])(inputs))

    def accuracy(y_true, y_pred):
        same = keras.ops.sign(keras.ops.reshape(y_pred, (-1,))) == keras.ops.reshape(y_true, (-1,))
        return keras.ops.mean(keras.ops.cast(same, "float32"))

    model.compile(keras.optimizers.Adam(0.02 * np.pi), loss="mse", metrics=[accuracy])
    rows = []
    for epoch in range(epochs):
        start = time.perf_counter()
        logs = model.fit(
            x_train, y_train, batch_size=16, epochs=1, verbose=0, validation_data=(x_test, y_test)
        ).history
        rows.append(
            {
                "epoch": epoch + 1,
                "seconds": time.perf_counter() - start,
                "train_accuracy": logs["accuracy"][0],
                "test_accuracy": logs["val_accuracy"][0],
            }
        )
        print(f"qstore_pl epoch {epoch + 1}: {rows[-1]}", flush=True)
    return {
        "peer": f"qstore.router (Keras {keras.__version__}, {keras.backend.backend()})",
        "epochs": rows,
    }


def run_tfq(python: str, epochs: int, seed: int) -> dict:
    out = RESULTS / "qcnn_tfq.json"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    cmd = [python, str(HERE / "qcnn_tfq.py"), "--epochs", str(epochs), "--seed", str(seed)]
    subprocess.run([*cmd, "--json", str(out)], env=env, check=True)
    return json.loads(out.read_text())


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
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results = [run_qstore(args.epochs, args.seed)]
    if args.tfq_python:
        results.append(run_tfq(args.tfq_python, args.epochs, args.seed))
    rows = [summary(r) for r in results]
    base = rows[0]
    header = ("peer", "1st epoch s", "epoch s", "x ours", "test acc", "best")
    print("\n{:<48} {:>11} {:>8} {:>7} {:>8} {:>6}".format(*header))
    for row in rows:
        ratio = row["epoch_s"] / base["epoch_s"]
        print(
            f"{row['peer']:<48} {row['first_epoch_s']:>11.2f} {row['epoch_s']:>8.2f} "
            f"{ratio:>7.2f} {row['final_test_accuracy']:>8.3f} {row['best_test_accuracy']:>6.3f}"
        )
    (RESULTS / "qcnn.json").write_text(json.dumps({"runs": results, "summary": rows}, indent=1))
    plot(results, RESULTS / "qcnn.png")
    print(f"wrote {RESULTS / 'qcnn.json'} and {RESULTS / 'qcnn.png'}")


if __name__ == "__main__":
    main()
