"""Workload W1 of DESIGN.md, built for one contender in one process.

RX angle encoding of n features, 4 layers of (RY, RZ on every qubit, ring of CNOTs),
<Z> on every qubit, Linear(n -> 2), cross-entropy, Adam; batch 32. A *train step* is
forward + backward + Adam update; a *forward batch* is the model under ``no_grad`` on a
new input batch each step (cycling through four).

Run as a script, it measures one contender and prints one JSON line::

    python benchmarks/w1_workload.py --contender router --qubits 8 --mode train
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np

LAYERS = 4
BATCH = 32
#: the Keras-layer contender (``qstore_pl.keras.KerasLayer`` on the router, compiled path)
KERAS = "router keras"
#: the same through its QNode (``compiled=False``)
KERAS_QNODE = "router keras qnode"
#: ``qstore_pl.torch.TorchLayer`` on the router: the compiled path
COMPILED = "router compiled"

#: contender -> (device name, device kwargs, QNode kwargs)
CONTENDERS = {
    "router": ("qstore.router", {}, {}),
    COMPILED: ("qstore.router", {}, {}),
    "lightning adjoint": ("lightning.qubit", {}, {"diff_method": "adjoint"}),
    "lightning adjoint+vjp": (
        "lightning.qubit",
        {},
        {"diff_method": "adjoint", "device_vjp": True},
    ),
    "default.qubit backprop": ("default.qubit", {}, {"diff_method": "backprop"}),
}


def direct_contender(backend: str) -> tuple[str, dict, dict]:
    """The router's chosen backend, called directly (for the router-overhead row)."""
    import pennylane as qml  # noqa: F401  (registers plugins)

    from qstore_pl.router.registry.builtin import AUTO_BACKENDS

    for entry in AUTO_BACKENDS:
        if entry.name == backend:
            return entry.type, _numpy_options(entry.options), {"diff_method": "best"}
    return backend, {}, {"diff_method": "best"}


def _numpy_options(options) -> dict:
    """Config strings such as ``"complex64"`` as the numpy dtypes devices take."""
    return {k: np.dtype(v).type if k == "c_dtype" else v for k, v in dict(options).items()}


def w1_circuit(n: int, noise: float | None = None):
    """The W1 circuit on ``n`` qubits as a function ``(inputs, weights)``, for any QNode;
    with ``noise``, a depolarising channel of that strength on every qubit after every
    layer (noisy W1)."""
    import pennylane as qml

    def circuit(inputs, weights):
        for i in range(n):
            qml.RX(inputs[..., i], wires=i)
        for layer in range(LAYERS):
            for i in range(n):
                qml.RY(weights[layer, i, 0], wires=i)
                qml.RZ(weights[layer, i, 1], wires=i)
            for i in range(n):
                qml.CNOT([i, (i + 1) % n])
            if noise:
                for i in range(n):
                    qml.DepolarizingChannel(noise, wires=i)
        return [qml.expval(qml.Z(i)) for i in range(n)]

    return circuit


def build(
    n: int,
    device: str,
    device_kwargs: dict,
    qnode_kwargs: dict,
    seed: int = 0,
    compiled: bool = False,
):
    """The torch model, optimiser, loss and one batch of data (``compiled``: through
    ``qstore_pl.torch.TorchLayer``, which takes the compiled path on the router)."""
    import pennylane as qml

    if device.startswith("qstore."):
        # only here: importing qstore_pl also makes OpenMP runtimes loaded later wait
        # passively, which other contenders would not get as a user runs them
        import qstore_pl  # noqa: F401

    dev = qml.device(device, wires=n, **device_kwargs)

    circuit = qml.QNode(w1_circuit(n), dev, interface="torch", **qnode_kwargs)
    return (dev, *torch_model(circuit, n, seed, compiled))


def torch_model(qnode, n: int, seed: int = 0, compiled: bool = False):
    """W1's torch model around ``qnode`` (TorchLayer + Linear(n -> 2)), its optimiser,
    loss and one batch of data; ``compiled`` uses ``qstore_pl.torch.TorchLayer``."""
    import pennylane as qml
    import torch

    torch.manual_seed(seed)
    if compiled:
        from qstore_pl.torch import TorchLayer

        layer = TorchLayer(qnode, {"weights": (LAYERS, n, 2)})
    else:
        layer = qml.qnn.TorchLayer(qnode, {"weights": (LAYERS, n, 2)})
    model = torch.nn.Sequential(layer, torch.nn.Linear(n, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.uniform(0, np.pi, (BATCH, n)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, BATCH))
    return model, optimiser, torch.nn.CrossEntropyLoss(), x, y


def build_keras(
    n: int,
    mode: str,
    seed: int = 0,
    compiled: bool = True,
    step: str = "function",
    quantum: bool = True,
):
    """The same model as a Keras 3 model with ``qstore_pl.keras.KerasLayer`` (backend from
    ``KERAS_BACKEND``) on ``qstore.router``: the router and its step function.

    ``step="function"`` trains as the TFQ contender does (a ``tf.function`` of
    ``GradientTape``, loss and ``optimizer.apply_gradients``; on other backends
    ``train_on_batch``); ``"train_on_batch"`` adds Keras's per-call work (metrics reset,
    data conversion, logs to numpy: ~1 ms on a 2-core machine whatever the model).
    ``quantum=False`` puts ``Dense(n)`` in the layer's place: Keras's own step cost.
    """
    import keras
    import pennylane as qml

    from qstore_pl.keras import KerasLayer

    keras.utils.set_random_seed(seed)
    dev = qml.device("qstore.router", wires=n)
    if quantum:
        circuit = qml.QNode(w1_circuit(n), dev)
        first = KerasLayer(circuit, {"weights": (LAYERS, n, 2)}, compiled=compiled)
    else:
        first = keras.layers.Dense(n)
    model = keras.Sequential([keras.Input((n,)), first, keras.layers.Dense(2)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss_fn)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, np.pi, (BATCH, n)).astype("float32")
    y = rng.integers(0, 2, BATCH)
    if mode == "train":
        if step == "function" and keras.backend.backend() == "tensorflow":
            return dev, keras_function_step(model, loss_fn, x, y)
        return dev, lambda: model.train_on_batch(x, y)
    batches = fresh_batches(rng, n)
    calls = iter(range(10**9))
    return dev, lambda: model.predict_on_batch(batches[next(calls) % len(batches)])


def keras_function_step(model, loss_fn, x, y):
    """A TensorFlow train step as ``w1_tfq.py`` writes TFQ's: one ``tf.function``."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    optimizer = model.optimizer

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return train


def fresh_batches(rng, n: int, count: int = 4) -> list:
    """Input batches that forward steps cycle through: inference sees new data every
    step, and a device may answer a repeated circuit from the states it kept."""
    return [rng.uniform(0, np.pi, (BATCH, n)).astype("float32") for _ in range(count)]


def step_function(mode: str, model, optimiser, loss_fn, x, y):
    import torch

    def train():
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()

    batches = [torch.as_tensor(b) for b in fresh_batches(np.random.default_rng(1), x.shape[1])]
    calls = iter(range(10**9))

    def forward():
        with torch.no_grad():
            model(batches[next(calls) % len(batches)])

    return train if mode == "train" else forward


def time_steps(step, seconds: float, min_steps: int, steps: int = 10**9):
    """Seconds of the first call, then wall and CPU seconds of each step until
    ``seconds`` have passed (at least ``min_steps``, at most ``steps``)."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times: list[float] = []
    cpu: list[float] = []  # CPU time of every thread of this process: spinning shows here
    deadline = time.perf_counter() + seconds
    while len(times) < steps and (len(times) < min_steps or time.perf_counter() < deadline):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return first, times, cpu


def measure(args) -> dict:
    """Time one contender: first call, then steps until ``--seconds`` or ``--steps``."""
    import torch

    torch.set_num_threads(args.threads)
    if args.contender in (KERAS, KERAS_QNODE):
        device = "qstore.router"
        dev, step = build_keras(args.qubits, args.mode, compiled=args.contender == KERAS)
    else:
        if args.contender.startswith("direct:"):
            device, device_kwargs, qnode_kwargs = direct_contender(args.contender[7:])
        else:
            device, device_kwargs, qnode_kwargs = CONTENDERS[args.contender]
        dev, model, optimiser, loss_fn, x, y = build(
            args.qubits, device, device_kwargs, qnode_kwargs, compiled=args.contender == COMPILED
        )
        step = step_function(args.mode, model, optimiser, loss_fn, x, y)
    first, times, cpu = time_steps(step, args.seconds, args.min_steps, args.steps)
    chosen = None
    if device == "qstore.router":
        chosen = sorted(dev.routing_report().totals)
    return {
        "contender": args.contender,
        "qubits": args.qubits,
        "mode": args.mode,
        "first_s": first,
        "median_ms": 1e3 * statistics.median(times),
        "best_ms": 1e3 * min(times),
        "cpu_ms": 1e3 * statistics.median(cpu),
        "steps": len(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "chosen": chosen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contender", required=True)
    parser.add_argument("--qubits", type=int, required=True)
    parser.add_argument("--mode", choices=("train", "forward"), default="train")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--min-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    print(json.dumps(measure(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
