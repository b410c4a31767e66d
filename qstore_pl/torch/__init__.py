"""torch modules for quantum circuits (PennyLane's TorchLayer underneath)."""

from qstore_pl.torch.layer import TorchLayer
from qstore_pl.torch.quantum_layer import QuantumLayer

__all__ = ["QuantumLayer", "TorchLayer"]
