"""The digits workload in JAX and in torch on the same router, epochs interleaved.

The model of ``notebooks/digits_jax.ipynb`` and ``digits_torch.ipynb``: scikit-learn's
digits 3 vs 6, PCA to 8 features, angle encoding + a depth-2 ring hardware-efficient
ansatz on 8 qubits, <Z> on every qubit, a linear head, Adam, cross-entropy; 8 full
batches of 32 per epoch (the same batches for every contender), then the test set.

- ``jax circuit_function``: ``qstore_pl.jax.circuit_function`` under ``jax.jit`` (a
  step is one forward and one VJP router run for the whole batch, on the compiled
  path); its compile time is the ahead-of-time ``lower().compile()`` of the training
  step;
- ``torch QuantumLayer``: ``qstore_pl.torch.QuantumLayer`` (TorchLayer) + Linear;
- ``jax QNode vmap`` (``--qnode-vmap``): the notebook before, a one-sample QNode with
  ``interface="jax"`` mapped over the batch with ``jax.vmap``.

Every contender gets its own ``qstore.router``; epochs run in turn (A B C A B C ..., the
order rotating), and the table shows medians and the ratio to torch's.

    python benchmarks/bench_jax.py --epochs 7 [--qnode-vmap]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

N_QUBITS, DEPTH, BATCH, STEPS = 8, 2, 32, 8


class JaxDigits:
    """The JAX notebook's model; ``per_sample`` maps a one-sample QNode instead."""

    def __init__(self, data, per_sample: bool):
        import jax
        import jax.numpy as jnp
        import optax
        import pennylane as qml

        from qstore_pl.jax import circuit_function
        from qstore_pl.templates import AngleEncoding, HardwareEfficientAnsatz

        jax.config.update("jax_enable_x64", True)
        self.x_train, self.x_test, self.y_train, self.y_test = data
        dev = qml.device("qstore.router", wires=N_QUBITS)

        def circuit(x, weights):
            AngleEncoding(x, wires=range(N_QUBITS))
            HardwareEfficientAnsatz(weights, wires=range(N_QUBITS), entanglement="ring")
            return [qml.expval(qml.Z(i)) for i in range(N_QUBITS)]

        if per_sample:
            qnode = qml.QNode(circuit, dev, interface="jax")

            def quantum(x, w):
                return jax.vmap(lambda sample: jnp.stack(qnode(sample, w)))(x)
        else:
            quantum = circuit_function(circuit, dev)

        def logits(params, x):
            return quantum(x, params["quantum"]) @ params["w"] + params["b"]

        def loss_fn(params, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()

        k_quantum, k_head = jax.random.split(jax.random.PRNGKey(0))
        shape = HardwareEfficientAnsatz.shape(DEPTH, N_QUBITS)
        self.params = {
            "quantum": jax.random.uniform(k_quantum, shape, maxval=2 * jnp.pi),
            "w": jax.random.normal(k_head, (N_QUBITS, 2)) / jnp.sqrt(N_QUBITS),
            "b": jnp.zeros(2),
        }
        optimiser = optax.adam(0.1)
        self.opt_state = optimiser.init(self.params)

        def train_step(params, opt_state, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = optimiser.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        start, cpu = time.perf_counter(), time.process_time()
        args = (self.params, self.opt_state, self.x_train[:BATCH], self.y_train[:BATCH])
        self._step = jax.jit(train_step).lower(*args).compile()
        self.compile_seconds = time.perf_counter() - start
        self.compile_cpu_seconds = time.process_time() - cpu
        self._predict = jax.jit(lambda params, x: jnp.argmax(logits(params, x), axis=-1))

    def step(self, batch: np.ndarray) -> None:
        x, y = self.x_train[batch], self.y_train[batch]
        self.params, self.opt_state, loss = self._step(self.params, self.opt_state, x, y)
        loss.block_until_ready()

    def accuracy(self) -> float:
        return float(np.mean(np.asarray(self._predict(self.params, self.x_test)) == self.y_test))


class TorchDigits:
    """The torch notebook's model."""

    compile_seconds = compile_cpu_seconds = float("nan")

    def __init__(self, data):
        import pennylane as qml
        import torch

        from qstore_pl.torch import QuantumLayer

        torch.manual_seed(0)
        self.torch = torch
        x_train, x_test, y_train, y_test = data
        self.x_train, self.x_test = (
            torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test)
        )
        self.y_train, self.y_test = torch.tensor(y_train), torch.tensor(y_test)
        dev = qml.device("qstore.router", wires=N_QUBITS)
        self.model = torch.nn.Sequential(
            QuantumLayer(N_QUBITS, DEPTH, entanglement="ring", device=dev),
            torch.nn.Linear(N_QUBITS, 2),
        )
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=0.05)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self, batch: np.ndarray) -> None:
        index = self.torch.as_tensor(batch)
        self.optimiser.zero_grad()
        self.loss_fn(self.model(self.x_train[index]), self.y_train[index]).backward()
        self.optimiser.step()

    def accuracy(self) -> float:
        with self.torch.no_grad():
            predicted = self.model(self.x_test).argmax(dim=1)
        return float((predicted == self.y_test).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--qnode-vmap", action="store_true", help="also time the notebook before")
    args = parser.parse_args()

    from qstore_pl.datasets import load_digits_pca

    data = load_digits_pca(classes=(3, 6), n_components=8)
    builders = {
        "jax circuit_function": lambda: JaxDigits(data, per_sample=False),
        "torch QuantumLayer": lambda: TorchDigits(data),
    }
    if args.qnode_vmap:
        builders["jax QNode vmap (before)"] = lambda: JaxDigits(data, per_sample=True)
    rng = np.random.default_rng(0)
    first_batch = np.arange(BATCH)
    contenders: dict = {}
    first_step: dict[str, tuple[float, float]] = {}
    for name, build in builders.items():
        contenders[name] = build()
        start, cpu = time.perf_counter(), time.process_time()
        contenders[name].step(first_batch)  # the first router call: kernels compile
        first_step[name] = (time.perf_counter() - start, time.process_time() - cpu)
    names = list(contenders)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in names}
    for epoch in range(args.epochs):
        batches = rng.permutation(len(data[0]))[: STEPS * BATCH].reshape(STEPS, BATCH)
        for name in names[epoch % len(names) :] + names[: epoch % len(names)]:
            start, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                contenders[name].step(batch)
            seconds[name].append(time.perf_counter() - start)
            cpu_seconds[name].append(time.process_time() - cpu)
    torch_median = float(np.median(seconds["torch QuantumLayer"]))
    print(
        f"digits 3 vs 6, {N_QUBITS} qubits, {STEPS} steps of {BATCH} per epoch, "
        f"{args.epochs} epochs"
    )
    print(
        "| contender | compile s (CPU s) | first step s (CPU s) | s per epoch (median) "
        "| min-max | CPU s per epoch | vs torch | test accuracy |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        median = float(np.median(seconds[name]))
        model = contenders[name]
        compiled = f"{model.compile_seconds:.2f} ({model.compile_cpu_seconds:.2f})"
        print(
            f"| {name} | {'-' if np.isnan(model.compile_seconds) else compiled} "
            f"| {first_step[name][0]:.2f} ({first_step[name][1]:.2f}) | {median:.3f} "
            f"| {min(seconds[name]):.3f}-{max(seconds[name]):.3f} "
            f"| {np.median(cpu_seconds[name]):.3f} "
            f"| {median / torch_median:.2f}x | {model.accuracy():.3f} |"
        )


if __name__ == "__main__":
    main()
