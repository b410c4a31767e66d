"""Keras 3 layers for quantum circuits, on the TensorFlow, JAX and torch backends."""

from qstore_pl.keras.layer import KerasLayer
from qstore_pl.keras.loading import LOAD_DEVICE, UnsafeDeviceWarning, load_model
from qstore_pl.keras.noisy_pqc import NoisyPQC
from qstore_pl.keras.pqc import PQC, ControlledPQC
from qstore_pl.keras.quantum_layer import QuantumLayer

__all__ = [
    "LOAD_DEVICE",
    "PQC",
    "ControlledPQC",
    "KerasLayer",
    "NoisyPQC",
    "QuantumLayer",
    "UnsafeDeviceWarning",
    "load_model",
]
