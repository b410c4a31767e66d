"""What every framework's trainer does for :class:`~qstore_pl.model.QuantumModel`.

The model is the same in each framework: the circuit's expectation values (a
``QuantumLayer`` on the model's device) feed a linear layer with one output per
class, trained with Adam on the softmax cross-entropy. A trainer runs one step on
one batch, gives logits, and hands its whole state (weights and optimiser) over as
named numpy arrays, so checkpoints and saved models look the same in every framework.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from qstore_pl.layers.circuit import LayerCircuit


@dataclass(frozen=True)
class TrainerSpec:
    """What a trainer is built from.

    Attributes
    ----------
    circuit : LayerCircuit
        The circuit.
    device : qml.devices.Device
        Where it runs.
    gradient : {"adjoint", "parameter-shift", "spsa"}
        The QNode's differentiation method.
    gradient_kwargs : dict or None
        Its options.
    shots : int or None
        Shots per circuit.
    n_features, n_classes : int
        Input width and number of classes.
    learning_rate : float
        Adam's step size.
    seed : int
        Seeds the initial weights.
    """

    circuit: LayerCircuit
    device: Any
    gradient: str
    gradient_kwargs: dict | None
    shots: int | None
    n_features: int
    n_classes: int
    learning_rate: float
    seed: int


def layer_options(spec: TrainerSpec) -> dict[str, Any]:
    """Arguments of a framework's ``QuantumLayer`` for ``spec``."""
    c = spec.circuit
    return {
        "n_qubits": c.n_qubits,
        "depth": c.depth,
        "encoding": c.encoding,
        "ansatz": c.ansatz,
        "device": spec.device,
        "diff_method": spec.gradient,
        "shots": spec.shots,
        "gradient_kwargs": spec.gradient_kwargs,
    }


class Trainer(Protocol):
    """One framework's model and optimiser."""

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One optimiser step on a batch; returns the batch's mean loss and correctly
        classified samples, both from the forward pass before the step."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of ``x``, shape ``(n, n_classes)`` (no gradient work)."""

    def state(self) -> dict[str, np.ndarray]:
        """Weights and optimiser state."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state`."""


_TRAINERS = {
    "torch": ("qstore_pl.model.torch_trainer", "TorchTrainer", "torch"),
    "keras": ("qstore_pl.model.keras_trainer", "KerasTrainer", "tensorflow"),
    "jax": ("qstore_pl.model.jax_trainer", "JaxTrainer", "jax"),
}


def make_trainer(framework: str, spec: TrainerSpec) -> Trainer:
    """A trainer for ``framework`` (imports only that framework).

    Raises
    ------
    ImportError
        When the framework is not installed, naming the extra that installs it.
    """
    module, name, extra = _TRAINERS[framework]
    try:
        trainer = getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise ImportError(
            f"framework={framework!r} needs {err.name or framework}: "
            f"pip install 'qstore_pl[{extra}]', or choose another framework"
        ) from err
    return trainer(spec)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy of integer labels ``y``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
