"""JAX functions of quantum circuits: one host call per batch under jit and vmap."""

from qstore_pl.interfaces.jax_circuit import circuit_function

__all__ = ["circuit_function"]
