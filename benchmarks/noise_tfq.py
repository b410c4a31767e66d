"""Noisy W1 on TensorFlow Quantum 0.7.6 (``tfq.layers.NoisyPQC``), one JSON line.

Run by ``bench_noise.py`` with the TFQ interpreter (``--tfq-python``): the W1 ansatz
with ``cirq.depolarize(p)`` on every qubit after every layer (the same channel as
``qml.DepolarizingChannel(p)``), analytic expectation per trajectory over
``--repetitions`` trajectories, TFQ's default differentiator for noisy circuits
(parameter shift), Dense(2), cross-entropy, Adam; the train step is a ``tf.function``.

    TF_USE_LEGACY_KERAS=1 python benchmarks/noise_tfq.py --qubits 8 --mode train
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
from w1_tfq import BATCH, LAYERS, data_circuits


def noisy_model_circuit(qubits, noise: float):
    symbols = sympy.symbols(f"w0:{LAYERS * len(qubits) * 2}")
    circuit = cirq.Circuit()
    n, k = len(qubits), 0
    for _ in range(LAYERS):
        for q in qubits:
            circuit += cirq.ry(symbols[k]).on(q)
            circuit += cirq.rz(symbols[k + 1]).on(q)
            k += 2
        circuit += [cirq.CNOT(qubits[i], qubits[(i + 1) % n]) for i in range(n)]
        circuit += [cirq.depolarize(noise).on(q) for q in qubits]
    return circuit


def measure(args) -> dict:
    n = args.qubits
    qubits = cirq.LineQubit.range(n)
    inputs = tf.keras.Input(shape=(), dtype=tf.string)
    pqc = tfq.layers.NoisyPQC(
        noisy_model_circuit(qubits, args.noise),
        [cirq.Z(q) for q in qubits],
        repetitions=args.repetitions,
        sample_based=False,
    )(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(pqc))
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
    while len(times) < args.min_steps or time.perf_counter() < deadline:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "contender": f"TFQ NoisyPQC R={args.repetitions}",
        "qubits": n,
        "mode": args.mode,
        "first_s": first,
        "median_ms": 1e3 * statistics.median(times),
        "steps": len(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, required=True)
    parser.add_argument("--mode", choices=("train", "forward"), default="train")
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--repetitions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--min-steps", type=int, default=2)
    print(json.dumps(measure(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
