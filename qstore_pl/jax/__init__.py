"""JAX functions of quantum circuits: one host call per batch under jit and vmap."""

from qstore_pl.jax.circuit import circuit_function

__all__ = ["circuit_function"]
