"""Keras 3 layers for quantum circuits, on the TensorFlow, JAX and torch backends."""

from qstore_pl.keras.layer import KerasLayer

__all__ = ["KerasLayer"]
