"""Shared pieces of the circuit-conversion tests: seeded random parametrised circuits
and unitary comparison up to a global phase."""

from __future__ import annotations

import numpy as np
import pennylane as qml

from qstore_pl.circuits import ParametrizedCircuit, Symbol

#: (gate, number of wires, number of parameters) that every format writes.
COMMON_GATES = [
    (qml.RX, 1, 1),
    (qml.RY, 1, 1),
    (qml.RZ, 1, 1),
    (qml.PhaseShift, 1, 1),
    (qml.Hadamard, 1, 0),
    (qml.S, 1, 0),
    (qml.T, 1, 0),
    (qml.SX, 1, 0),
    (qml.PauliX, 1, 0),
    (qml.PauliY, 1, 0),
    (qml.CNOT, 2, 0),
    (qml.CZ, 2, 0),
    (qml.SWAP, 2, 0),
    (qml.CRX, 2, 1),
    (qml.CRY, 2, 1),
    (qml.CRZ, 2, 1),
    (qml.ControlledPhaseShift, 2, 1),
    (qml.IsingXX, 2, 1),
    (qml.IsingZZ, 2, 1),
    (qml.Toffoli, 3, 0),
    (qml.CSWAP, 3, 0),
]


def random_circuit(seed: int, n_wires: int = 3, n_gates: int = 24, gates=None, n_symbols: int = 5):
    """A random ParametrizedCircuit over symbol ``w`` (shape ``(n_symbols,)``) and
    scalar ``x``: parameters are scaled symbols or constants; and values to bind."""
    rng = np.random.default_rng(seed)
    gates = gates or COMMON_GATES
    ops = []
    for _ in range(n_gates):
        gate, k, n_params = gates[rng.integers(len(gates))]
        wires = [int(w) for w in rng.permutation(n_wires)[:k]]
        params = []
        for _ in range(n_params):
            kind = rng.integers(3)
            if kind == 0:
                params.append(Symbol("w", (int(rng.integers(n_symbols)),), rng.uniform(-2, 2)))
            elif kind == 1:
                params.append(Symbol("x", (), float(rng.choice([1.0, -0.5]))))
            else:
                params.append(float(rng.uniform(-np.pi, np.pi)))
        ops.append(gate(*params, wires=wires))
    values = {"w": rng.uniform(-np.pi, np.pi, n_symbols), "x": float(rng.uniform(-np.pi, np.pi))}
    return ParametrizedCircuit(ops, [], {"w": (n_symbols,), "x": ()}), values


def unitary(tape_or_ops, wire_order) -> np.ndarray:
    """The matrix of a tape's (or operator list's) operations."""
    ops = tape_or_ops.operations if hasattr(tape_or_ops, "operations") else tape_or_ops
    return qml.matrix(qml.tape.QuantumScript(list(ops)), wire_order=wire_order)


def assert_equal_up_to_phase(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> None:
    """``a == e^{i phi} b`` for some phase, to ``atol`` in every entry."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    k = np.unravel_index(np.argmax(np.abs(b)), b.shape)
    phase = a[k] / b[k]
    assert abs(abs(phase) - 1) < atol, f"not equal up to a phase (|phase| = {abs(phase)})"
    np.testing.assert_allclose(a, phase * b, atol=atol)
