"""Keras 3 layers for quantum circuits, on the TensorFlow, JAX and torch backends."""

from qstore_pl.keras.layer import KerasLayer
from qstore_pl.keras.quantum_layer import QuantumLayer

__all__ = ["KerasLayer", "QuantumLayer"]
