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

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cirq
import tensorflow_quantum as tfq
from w1_tfq import model_circuit, time_model


def measure(args) -> dict:
    qubits = cirq.LineQubit.range(args.qubits)
    pqc = tfq.layers.NoisyPQC(
        model_circuit(qubits, noise=args.noise),
        [cirq.Z(q) for q in qubits],
        repetitions=args.repetitions,
        sample_based=False,
    )
    return time_model(pqc, qubits, args, f"TFQ NoisyPQC R={args.repetitions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, required=True)
    parser.add_argument("--mode", choices=("train", "forward"), default="train")
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--repetitions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--min-steps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10**9, help="at most this many steps")
    print(json.dumps(measure(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
