"""Quickstart: train a small hybrid torch model through ``qstore.router``.

A TorchLayer (angle encoding + hardware-efficient ansatz, ⟨Z⟩ on every qubit) feeds a
linear head that classifies two interleaved half-moons. The router picks the backend
for every batch; at the end the routing report shows what ran where and why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class QuickstartResult:
    """Outcome of a quickstart run."""

    losses: list[float]
    train_accuracy: float
    test_accuracy: float
    seconds_per_epoch: float
    report: str
    explanation: str
    cost_report: str


def two_moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in 2-D with labels 0/1, scaled to [0, pi]."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = rng.uniform(0, np.pi, n)
    upper = np.stack([np.cos(t[:half]), np.sin(t[:half])], axis=1)
    lower = np.stack([1 - np.cos(t[half:]), 0.5 - np.sin(t[half:])], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(half), np.ones(n - half)]).astype(np.int64)
    x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0)) * np.pi
    return x, y


def build_model(n_qubits: int, n_layers: int, dev: Any) -> Any:
    """Linear(2→n) → quantum layer (n qubits) → Linear(n→2)."""
    import pennylane as qml
    import torch

    from qstore_pl.templates import HardwareEfficientAnsatz

    @qml.qnode(dev, interface="torch")
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n_qubits), rotation="X")
        HardwareEfficientAnsatz(weights, wires=range(n_qubits))
        return [qml.expval(qml.Z(i)) for i in range(n_qubits)]

    shapes = {"weights": HardwareEfficientAnsatz.shape(n_layers, n_qubits)}
    model = torch.nn.Sequential(
        torch.nn.Linear(2, n_qubits),
        qml.qnn.TorchLayer(circuit, shapes),
        torch.nn.Linear(n_qubits, 2),
    )
    return model, circuit


def run(
    n_qubits: int = 4,
    n_layers: int = 2,
    epochs: int = 6,
    batch_size: int = 16,
    samples: int = 160,
    seed: int = 0,
    progress: bool = True,
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> QuickstartResult:
    """Train the hybrid model and return losses, accuracies and the routing report.

    Parameters
    ----------
    n_qubits, n_layers : int
        Size of the quantum layer.
    epochs, batch_size, samples : int
        Training schedule and dataset size (a quarter is held out for testing).
    seed : int
        Seed for data, weights and sampling.
    progress : bool
        Show a progress bar per epoch.
    config : dict or str, optional
        Router configuration (default: every local simulator).
    """
    import pennylane as qml
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    x, y = two_moons(samples, seed=seed)
    split = samples * 3 // 4
    x_train, y_train = torch.tensor(x[:split], dtype=torch.float32), torch.tensor(y[:split])
    x_test, y_test = torch.tensor(x[split:], dtype=torch.float32), torch.tensor(y[split:])
    order = np.random.default_rng(seed).permutation(samples)
    x_train, y_train = x_train[order[order < split]], y_train[order[order < split]]

    dev = qml.device("qstore.router", wires=n_qubits, router_config=config, seed=seed)
    model, circuit = build_model(n_qubits, n_layers, dev)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()

    losses = []
    start = time.perf_counter()
    for epoch in range(epochs):
        batches = range(0, split, batch_size)
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=None if progress else True,
            leave=False,
        )
        epoch_loss = 0.0
        for i in bar:
            optimiser.zero_grad()
            loss = loss_fn(model(x_train[i : i + batch_size]), y_train[i : i + batch_size])
            loss.backward()
            optimiser.step()
            epoch_loss += loss.item() * len(x_train[i : i + batch_size])
            bar.set_postfix(loss=f"{loss.item():.3f}")
        losses.append(epoch_loss / split)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")
    seconds_per_epoch = (time.perf_counter() - start) / epochs

    with torch.no_grad():
        train_acc = (model(x_train).argmax(1) == y_train).float().mean().item()
        test_acc = (model(x_test).argmax(1) == y_test).float().mean().item()

    # Explain how one training step's circuits are routed.
    weights = model[1].weights.detach().requires_grad_(True)
    inputs = model[0](x_train[:batch_size]).detach()
    explanation = str(dev.explain(circuit, inputs, weights))
    return QuickstartResult(
        losses=losses,
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        seconds_per_epoch=seconds_per_epoch,
        report=str(dev.routing_report()),
        explanation=explanation,
        cost_report=str(dev.cost_report()),
    )


def main(**kwargs: Any) -> QuickstartResult:
    """Run the quickstart and print its results."""
    result = run(**kwargs)
    print()
    print(f"train accuracy {result.train_accuracy:.2f}, test accuracy {result.test_accuracy:.2f}")
    print(f"{result.seconds_per_epoch:.2f} s per epoch")
    print()
    print(result.report)
    print()
    print(result.cost_report)
    print()
    print("How one training step is routed:")
    print(result.explanation)
    return result
