"""HardwareEfficientAnsatz: gates, shapes, broadcasting and bad input."""

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.templates import HardwareEfficientAnsatz, entangling_pairs


def test_decomposition_is_rotations_then_ring_per_layer():
    w = np.arange(12, dtype=float).reshape(2, 3, 2)
    ops = HardwareEfficientAnsatz(w, wires=["a", "b", "c"]).decomposition()
    names = [op.name for op in ops]
    layer = ["RY", "RZ"] * 3 + ["CNOT"] * 3
    assert names == layer * 2
    assert [op.wires.tolist() for op in ops[6:9]] == [["a", "b"], ["b", "c"], ["c", "a"]]
    assert ops[2].data[0] == w[0, 1, 0] and ops[14].data[0] == w[1, 2, 1]


@pytest.mark.parametrize(
    "n, kind, pairs",
    [
        (1, "ring", []),
        (2, "ring", [(0, 1)]),
        (3, "linear", [(0, 1), (1, 2)]),
        (3, "full", [(0, 1), (0, 2), (1, 2)]),
    ],
)
def test_entangling_pairs(n, kind, pairs):
    assert entangling_pairs(n, kind) == pairs


def test_matches_the_hand_written_circuit_on_default_qubit():
    n, layers = 3, 2
    w = np.random.default_rng(1).uniform(0, 2 * np.pi, (layers, n, 1))
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def template():
        HardwareEfficientAnsatz(w, wires=range(n), rotations=["RX"], entanglement="linear")
        return qml.state()

    @qml.qnode(dev)
    def by_hand():
        for layer in range(layers):
            for i in range(n):
                qml.RX(w[layer, i, 0], i)
            qml.CNOT([0, 1])
            qml.CNOT([1, 2])
        return qml.state()

    assert np.allclose(template(), by_hand())


def test_broadcast_weights_give_one_result_per_batch_entry():
    n = 2
    w = np.random.default_rng(2).uniform(0, 1, (4, 1, n, 2))
    dev = qml.device("qstore.router", wires=n)

    @qml.qnode(dev)
    def circuit(weights):
        HardwareEfficientAnsatz(weights, wires=range(n))
        return qml.expval(qml.Z(0))

    ref = qml.QNode(circuit.func, qml.device("default.qubit", wires=n))
    batched = circuit(w)
    assert batched.shape == (4,)
    assert np.allclose(batched, [ref(w[i]) for i in range(4)], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": np.zeros((2, 3, 2)), "wires": [0, 1]}, r"shape \(n_layers, 2, 2\)"),
        ({"weights": np.zeros((3, 2)), "wires": [0, 1, 2]}, "shape"),
        ({"weights": np.zeros((1, 2, 1)), "wires": [0, 1], "rotations": ["RW"]}, "rotations"),
        ({"weights": np.zeros((1, 2, 2)), "wires": [0, 1], "entanglement": "star"}, "star"),
    ],
)
def test_bad_arguments_say_what_is_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HardwareEfficientAnsatz(**kwargs)


def test_shape_helper():
    assert HardwareEfficientAnsatz.shape(4, 8) == (4, 8, 2)
    assert HardwareEfficientAnsatz.shape(1, 3, rotations=["RX", "RY", "RZ"]) == (1, 3, 3)


def test_decomposes_to_portable_gates_only():
    from qstore_pl.templates import PORTABLE_GATES

    w = np.zeros(HardwareEfficientAnsatz.shape(2, 3, rotations=["RX", "RY", "RZ"]))
    for kind in ("linear", "ring", "full"):
        ops = HardwareEfficientAnsatz(w, range(3), ["RX", "RY", "RZ"], kind).decomposition()
        assert {op.name for op in ops} <= PORTABLE_GATES
