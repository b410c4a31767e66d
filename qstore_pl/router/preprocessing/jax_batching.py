"""Eager ``jax.vmap`` over a QNode on the router.

PennyLane's eager JAX boundary converts the parameters to NumPy before the device runs
them, which a vmap's batch tracer cannot be ("Converting a JAX array to a NumPy array
not supported when using the JAX JIT", for every device-derivative method of every
device). Its jit boundary hands the device concrete values through
``jax.pure_callback``, which vmap batches: the forward pass as one broadcast call,
derivatives one call per mapped sample. default.qubit avoids the problem by
backpropagating; the router's device derivatives take the jit boundary instead.
"""

from __future__ import annotations

from pennylane.devices import ExecutionConfig
from pennylane.math import Interface
from pennylane.tape import QuantumScript

from qstore_pl.router.preprocessing.differentiation import framework_wrappers


def maps_eagerly(config: ExecutionConfig, circuit: QuantumScript | None) -> bool:
    """Whether ``jax.vmap`` maps ``circuit``'s parameters outside ``jax.jit``."""
    if circuit is None or config.interface != Interface.JAX:
        return False
    return any(
        name == "BatchTracer"
        for param in circuit.get_parameters(trainable_only=False)
        for name, _ in framework_wrappers(param)
    )
