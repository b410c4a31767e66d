"""TensorFlow Quantum's QCNN cluster-state tutorial model, timed (run in a TFQ venv).

The circuits, data split and training settings follow the tutorial: cluster state +
one RX(θ) excitation per circuit, 20 rounds x 8 qubits, 70 % training, a 63-symbol
convolution/pooling model read out with Z on the last qubit, MSE loss, Adam(0.02),
batch 16. ``benchmarks/bench_qcnn.py --tfq-python`` merges its output with qstore_pl's.

Usage (TFQ 0.7.6 needs TF 2.18 and tf_keras, so a separate venv)::

    TF_USE_LEGACY_KERAS=1 python benchmarks/qcnn_tfq.py --epochs 12 --json tfq_qcnn.json

``--serve`` trains one epoch per ``epoch`` line on stdin instead (the benchmark
interleaves contenders that way).
"""

from __future__ import annotations

import argparse
import json
import time

import cirq
import numpy as np
import sympy
import tensorflow as tf
import tensorflow_quantum as tfq
from bench_qcnn import serve  # this folder: the worker protocol both contenders speak


def cluster_state(bits):
    circuit = cirq.Circuit(cirq.H.on_each(bits))
    for this, nxt in zip(bits, [*bits[1:], bits[0]], strict=True):
        circuit.append(cirq.CZ(this, nxt))
    return circuit


def one_qubit(bit, s):
    return [cirq.X(bit) ** s[0], cirq.Y(bit) ** s[1], cirq.Z(bit) ** s[2]]


def two_qubit(bits, s):
    circuit = cirq.Circuit(one_qubit(bits[0], s[0:3]) + one_qubit(bits[1], s[3:6]))
    circuit.append([cirq.ZZ(*bits) ** s[6], cirq.YY(*bits) ** s[7], cirq.XX(*bits) ** s[8]])
    circuit.append(one_qubit(bits[0], s[9:12]) + one_qubit(bits[1], s[12:]))
    return circuit


def pool(source, sink, s):
    sink_basis = cirq.Circuit(one_qubit(sink, s[0:3]))
    circuit = cirq.Circuit(sink_basis, one_qubit(source, s[3:6]))
    circuit.append(cirq.CNOT(source, sink))
    circuit.append(sink_basis**-1)
    return circuit


def conv_layer(bits, s):
    circuit = cirq.Circuit()
    for a, b in zip(bits[0::2], bits[1::2], strict=True):
        circuit += two_qubit([a, b], s)
    for a, b in zip(bits[1::2], [*bits[2::2], bits[0]], strict=True):
        circuit += two_qubit([a, b], s)
    return circuit


def pool_layer(sources, sinks, s):
    circuit = cirq.Circuit()
    for a, b in zip(sources, sinks, strict=True):
        circuit += pool(a, b, s)
    return circuit


def model_circuit(q):
    s = sympy.symbols("qconv0:63")
    circuit = cirq.Circuit()
    circuit += conv_layer(q, s[0:15])
    circuit += pool_layer(q[:4], q[4:], s[15:21])
    circuit += conv_layer(q[4:], s[21:36])
    circuit += pool_layer(q[4:6], q[6:], s[36:42])
    circuit += conv_layer(q[6:], s[42:57])
    circuit += pool_layer([q[6]], [q[7]], s[57:63])
    return circuit


def generate_data(qubits, rng, n_rounds=20):
    circuits, labels = [], []
    for _ in range(n_rounds):
        for bit in qubits:
            theta = rng.uniform(-np.pi, np.pi)
            circuits.append(cirq.Circuit(cirq.rx(theta)(bit)))
            labels.append(1 if -np.pi / 2 <= theta <= np.pi / 2 else -1)
    split = int(len(circuits) * 0.7)
    labels = np.array(labels, dtype=np.float32)
    return circuits[:split], labels[:split], circuits[split:], labels[split:]


def build(seed: int):
    """The tutorial's data and compiled model: ``(train_one_epoch, peer name)``."""
    tf.random.set_seed(seed)
    qubits = cirq.GridQubit.rect(1, 8)
    x_train, y_train, x_test, y_test = generate_data(qubits, np.random.default_rng(seed))
    x_train, x_test = tfq.convert_to_tensor(x_train), tfq.convert_to_tensor(x_test)

    inputs = tf.keras.Input(shape=(), dtype=tf.dtypes.string)
    with_cluster = tfq.layers.AddCircuit()(inputs, prepend=cluster_state(qubits))
    outputs = tfq.layers.PQC(model_circuit(qubits), cirq.Z(qubits[-1]))(with_cluster)
    model = tf.keras.Model(inputs, outputs)

    def accuracy(y_true, y_pred):
        same = tf.equal(tf.reshape(y_true, [-1]), tf.sign(tf.reshape(y_pred, [-1])))
        return tf.reduce_mean(tf.cast(same, tf.float32))

    model.compile(tf.keras.optimizers.Adam(learning_rate=0.02), loss="mse", metrics=[accuracy])

    def epoch() -> dict:
        start = time.perf_counter()
        logs = model.fit(
            x_train, y_train, batch_size=16, epochs=1, verbose=0, validation_data=(x_test, y_test)
        ).history
        return {
            "seconds": time.perf_counter() - start,
            "train_accuracy": float(logs["accuracy"][0]),
            "test_accuracy": float(logs["val_accuracy"][0]),
        }

    return epoch, f"TFQ {tfq.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--serve", action="store_true", help="one epoch per stdin line")
    args = parser.parse_args()
    epoch, peer = build(args.seed)
    if args.serve:
        serve(epoch, peer)
        return
    rows = []
    for number in range(1, args.epochs + 1):
        row = {"epoch": number, **epoch()}
        rows.append(row)
        print(
            f"epoch {number:2d}: {row['seconds']:5.2f} s, train {row['train_accuracy']:.3f}, "
            f"test {row['test_accuracy']:.3f}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peer": peer, "epochs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
