"""Bridges that make host-side (numpy) circuit functions differentiable in TensorFlow,
JAX and torch without PennyLane's framework interfaces."""

from qstore_pl.interfaces.host import HostFunction

__all__ = ["HostFunction"]
