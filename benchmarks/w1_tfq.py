"""Workload W1 on TensorFlow Quantum 0.7.6 (qsim + adjoint differentiator), one JSON line.

TFQ needs TensorFlow 2.18 and Keras 2, which cannot share a virtual environment with
qstore_pl's stack; ``bench_w1.py`` runs this file with the interpreter given by
``--tfq-python`` (see ``benchmarks/README.md``). The model is TFQ's idiom for W1:
the batch arrives as data circuits (RX angle encoding), a ``tfq.layers.PQC`` appends
the 4-layer ansatz and reads ``<Z>`` on every qubit, then Dense(2), cross-entropy,
Adam; the train step is a ``tf.function``.

    TF_USE_LEGACY_KERAS=1 python benchmarks/w1_tfq.py --qubits 8 --mode train
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cirq
import numpy as np
import sympy
import tensorflow as tf
import tensorflow_quantum as tfq

LAYERS = 4
BATCH = 32


def model_circuit(qubits, noise: float | None = None):
    """The W1 ansatz; with ``noise``, ``cirq.depolarize(noise)`` on every qubit after
    every layer (noisy W1, as ``qml.DepolarizingChannel``)."""
    symbols = sympy.symbols(f"w0:{LAYERS * len(qubits) * 2}")
    circuit = cirq.Circuit()
    k = 0
    n = len(qubits)
    for _ in range(LAYERS):
        for q in qubits:
            circuit += cirq.ry(symbols[k]).on(q)
            circuit += cirq.rz(symbols[k + 1]).on(q)
            k += 2
        circuit += [cirq.CNOT(qubits[i], qubits[(i + 1) % n]) for i in range(n)]
        if noise:
            circuit += [cirq.depolarize(noise).on(q) for q in qubits]
    return circuit


def data_circuits(x, qubits):
    return tfq.convert_to_tensor(
        [cirq.Circuit(cirq.rx(float(v)).on(q) for v, q in zip(row, qubits)) for row in x]
    )


def measure(args) -> dict:
    qubits = cirq.LineQubit.range(args.qubits)
    if args.shots:  # TFQ's sampled expectation, differentiated by parameter shift
        pqc = tfq.layers.PQC(
            model_circuit(qubits),
            [cirq.Z(q) for q in qubits],
            repetitions=args.shots,
            differentiator=tfq.differentiators.ParameterShift(),
        )
    else:
        pqc = tfq.layers.PQC(
            model_circuit(qubits),
            [cirq.Z(q) for q in qubits],
            differentiator=tfq.differentiators.Adjoint(),
        )
    return time_model(pqc, qubits, args, "TFQ 0.7.6")


def time_model(pqc, qubits, args, contender: str) -> dict:
    """Time W1's Keras model around the PQC layer ``pqc``: one first step, then steps
    until ``args.seconds`` (at least ``args.min_steps``, at most ``args.steps``)."""
    n = len(qubits)
    inputs = tf.keras.Input(shape=(), dtype=tf.string)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(pqc(inputs)))
    optimiser = tf.keras.optimizers.Adam(0.01)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(0)
    x = data_circuits(rng.uniform(0, np.pi, (BATCH, n)), qubits)
    y = tf.constant(rng.integers(0, 2, BATCH))

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimiser.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    # a forward batch gets new inputs every step, as inference does (and as the PennyLane
    # contenders get them: a device may answer a repeated circuit from its last states)
    batches = [data_circuits(rng.uniform(0, np.pi, (BATCH, n)), qubits) for _ in range(4)]
    predict = tf.function(lambda inputs: model(inputs, training=False))
    calls = iter(range(10**9))

    def forward():
        return predict(batches[next(calls) % len(batches)])

    step = train if args.mode == "train" else forward
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times: list[float] = []
    deadline = time.perf_counter() + args.seconds
    while len(times) < args.steps and (
        len(times) < args.min_steps or time.perf_counter() < deadline
    ):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "contender": contender,
        "qubits": n,
        "mode": args.mode,
        "first_s": first,
        "median_ms": 1e3 * statistics.median(times),
        "best_ms": 1e3 * min(times),
        "steps": len(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "chosen": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, required=True)
    parser.add_argument("--mode", choices=("train", "forward"), default="train")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--min-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="ignored: TF uses every core")
    parser.add_argument("--shots", type=int, default=0, help="sampled, parameter shift (0: exact)")
    print(json.dumps(measure(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
