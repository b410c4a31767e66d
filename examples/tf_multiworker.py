"""Multi-worker training of a Keras model with a quantum layer on ``qstore.router``
under TensorFlow's ``MultiWorkerMirroredStrategy``.

Every worker holds a replica of Dense → quantum layer → Dense, runs its share of each
global batch through its own router, and the strategy sums the gradients of the
per-example losses scaled by the global batch size (collective all-reduce over the
network), so one step equals a single-worker step on the whole global batch.

Each worker is told the cluster and its own index by ``TF_CONFIG``; on one machine::

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
                "task": {"type": "worker", "index": 0}}' python examples/tf_multiworker.py &
    TF_CONFIG='{... "index": 1}}' python examples/tf_multiworker.py

deploy/k8s/tfjob.yaml starts the workers on Kubernetes (the training operator writes
``TF_CONFIG``). ``--grad-check PATH`` runs one step on a fixed global batch and has
worker 0 save the summed gradients there (the test suite compares them with one
worker). The quantum layer is ``qstore_pl.keras.KerasLayer``: the circuit runs on the
host and its gradient is the router's VJP, so PennyLane's TensorFlow interface is not
involved.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

# TensorFlow reads these when it is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import pennylane as qml
import tensorflow as tf

from qstore_pl.cli.quickstart import two_moons
from qstore_pl.keras import KerasLayer
from qstore_pl.templates import HardwareEfficientAnsatz


def quantum_layer(dev, n_qubits: int, n_layers: int, seed: int) -> KerasLayer:
    """Angle encoding + hardware-efficient ansatz, <Z> on every qubit, as a Keras layer
    (the batch runs as one parameter-broadcast circuit; gradients by the router's VJP)."""

    @qml.qnode(dev)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n_qubits), rotation="X")
        HardwareEfficientAnsatz(weights, wires=range(n_qubits))
        return [qml.expval(qml.Z(i)) for i in range(n_qubits)]

    init = keras.initializers.RandomUniform(0.0, 2 * np.pi, seed=seed)
    return KerasLayer(
        circuit,
        {"weights": HardwareEfficientAnsatz.shape(n_layers, n_qubits)},
        weight_specs={"weights": {"initializer": init}},
        dtype="float64",
    )


def router_config(precision: str) -> dict:
    """The router config every worker uses."""
    return {"precision": precision}


def make_model(n_qubits: int, n_layers: int, seed: int, config: dict) -> keras.Model:
    """The hybrid model, with weights that depend on ``seed`` only (float64)."""
    # float64 per layer, not through keras.config.set_floatx: the global dtype policy
    # is fixed once anything has asked for it, and other code shares the process
    dev = qml.device("qstore.router", wires=n_qubits, router_config=config, seed=seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(2,), dtype="float64"),
            keras.layers.Dense(
                n_qubits, kernel_initializer=keras.initializers.GlorotUniform(seed), dtype="float64"
            ),
            quantum_layer(dev, n_qubits, n_layers, seed),
            keras.layers.Dense(
                2, kernel_initializer=keras.initializers.GlorotUniform(seed + 1), dtype="float64"
            ),
        ]
    )
    return model


def dataset(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two half-moons, features float64, labels int64."""
    return two_moons(samples, seed=seed)


def shuffled(samples: int, seed: int) -> np.ndarray:
    """The order in which samples are visited."""
    return np.random.default_rng(seed).permutation(samples)


def shard(batch: np.ndarray, index: int, workers: int) -> np.ndarray:
    """This worker's contiguous, equal share of a global batch."""
    size = len(batch) // workers
    return batch[index * size : (index + 1) * size]


def scaled_loss_gradients(model, x, y, global_batch: int) -> list:
    """Gradients of this worker's share of the global mean loss."""
    with tf.GradientTape() as tape:
        logits = model(x)
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
    return tape.gradient(loss, model.trainable_variables), loss


def worker_index() -> tuple[int, int]:
    """This worker's index and the number of workers, from ``TF_CONFIG``."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    workers = len(config.get("cluster", {}).get("worker", [])) or 1
    return int(config.get("task", {}).get("index", 0)), workers


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch size")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("single", "double"), default="single")
    parser.add_argument("--grad-check", default=None, help="save one step's gradients here")
    args = parser.parse_args(argv)

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index, workers = worker_index()
    if args.batch_size % workers:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of {workers}")
    with strategy.scope():
        model = make_model(args.qubits, args.layers, args.seed, router_config(args.precision))
        optimiser = keras.optimizers.Adam(args.lr)
        optimiser.build(model.trainable_variables)
    x, y = dataset(args.samples, args.seed)
    order = shuffled(len(x), args.seed)

    def step(mine):
        grads, loss = scaled_loss_gradients(model, x[mine], y[mine], args.batch_size)
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        loss = context.all_reduce(tf.distribute.ReduceOp.SUM, loss)
        return grads, loss

    if args.grad_check:  # the first global batch of training
        grads, _ = strategy.run(step, args=(shard(order[: args.batch_size], index, workers),))
        if index == 0:  # in the order of model.trainable_variables
            np.savez(args.grad_check, *[np.asarray(g) for g in grads])
        return

    for epoch in range(args.epochs):
        losses = []
        for start in range(0, len(x) - args.batch_size + 1, args.batch_size):
            mine = shard(order[start : start + args.batch_size], index, workers)
            grads, loss = strategy.run(step, args=(mine,))
            optimiser.apply_gradients(zip(grads, model.trainable_variables))
            losses.append(float(loss))
        if index == 0:
            print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}", flush=True)


if __name__ == "__main__":
    main()
