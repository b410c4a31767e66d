"""The states the recorder simulates are default.qubit's, over wires 0..max (integer
labels) or the tape's own order, whatever order the circuit first uses them in."""

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.db.circuits import final_states


def ops_unsorted(x):
    qml.Hadamard(2)  # wire 2 first, wire 1 next, wire 0 last
    qml.CNOT([2, 1])
    qml.RX(x, 0)
    qml.CRY(0.4, [0, 2])


def ops_idle_wire(x):
    qml.RX(x, 0)
    qml.CNOT([0, 2])  # wire 1 idle


def ops_labels(x):
    qml.RX(x, "a")
    qml.CNOT(["a", "c"])
    qml.Hadamard("b")


@pytest.mark.parametrize(
    ("ops", "wires"),
    [(ops_unsorted, [0, 1, 2]), (ops_idle_wire, [0, 1, 2]), (ops_labels, ["a", "c", "b"])],
)
@pytest.mark.parametrize("x", [0.3, np.array([0.3, 1.1, 2.5])])
def test_simulated_states_are_default_qubits(ops, wires, x):
    tape = qml.tape.make_qscript(ops)(x)
    device = qml.device("default.qubit", wires=wires)
    expected = qml.QNode(lambda: (ops(x), qml.state())[1], device)()
    np.testing.assert_allclose(final_states(tape), np.atleast_2d(expected), atol=1e-12)
