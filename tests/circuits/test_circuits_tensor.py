"""Circuit tensors: numeric encoding of circuit batches (qstore_pl.circuits.tensor)."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane.tape import QuantumScript

from qstore_pl.circuits import (
    MAX_WIRES,
    OP_CODES,
    OP_VOCABULARY,
    OP_VOCABULARY_VERSION,
    decode_circuits,
    encode_circuits,
    row_width,
)
from qstore_pl.circuits.tensor import _SPECS


def random_circuit(rng, n_wires: int = 4, n_ops: int | None = None) -> QuantumScript:
    """A circuit of random vocabulary gates on integer wires."""
    n_ops = int(rng.integers(1, 15)) if n_ops is None else n_ops
    ops = []
    with qml.QueuingManager.stop_recording():
        for _ in range(n_ops):
            name = OP_VOCABULARY[rng.integers(len(OP_VOCABULARY))]
            build, k_wires, k_params = _SPECS[name]
            wires = rng.choice(n_wires, size=k_wires, replace=False).tolist()
            ops.append(build(*rng.normal(scale=2.0, size=k_params).tolist(), wires=wires))
    return QuantumScript(ops)


def test_vocabulary_is_pinned():
    # Changing this tuple changes what stored tensors mean: append only, and bump
    # OP_VOCABULARY_VERSION when you do.
    assert OP_VOCABULARY_VERSION == 1
    assert OP_VOCABULARY == (
        "Identity", "Hadamard", "PauliX", "PauliY", "PauliZ", "S", "Adjoint(S)", "T",
        "Adjoint(T)", "SX", "Adjoint(SX)", "RX", "RY", "RZ", "PhaseShift", "U1", "U2",
        "U3", "Rot", "CNOT", "CY", "CZ", "CH", "SWAP", "ISWAP", "ECR", "CRX", "CRY",
        "CRZ", "CRot", "ControlledPhaseShift", "IsingXX", "IsingYY", "IsingZZ", "IsingXY",
        "Toffoli", "CSWAP",
    )  # fmt: skip
    assert OP_CODES["Identity"] == 1 and OP_CODES["CSWAP"] == len(OP_VOCABULARY)
    assert max(spec[1] for spec in _SPECS.values()) == MAX_WIRES


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_is_exact(seed):
    rng = np.random.default_rng(seed)
    circuits = [random_circuit(rng) for _ in range(6)]
    array = encode_circuits(circuits)
    longest = max(len(c.operations) for c in circuits)
    assert array.shape == (6, longest, row_width(3)) and array.dtype == np.float64
    for block, circuit in zip(array, circuits):
        assert not block[len(circuit.operations) :].any()  # padding rows are all zero
    decoded = decode_circuits(array)
    for original, restored in zip(circuits, decoded):
        assert len(restored.operations) == len(original.operations)
        for a, b in zip(original.operations, restored.operations):
            assert qml.equal(a, b, atol=0, rtol=0), (a, b)
            assert [np.float64(x).tobytes() for x in a.data] == [
                np.float64(y).tobytes() for y in b.data
            ]


def test_decoded_circuits_give_the_same_expectation_values():
    rng = np.random.default_rng(5)
    circuits = [random_circuit(rng, n_wires=3, n_ops=10) for _ in range(4)]
    measurements = [qml.expval(qml.PauliZ(0) @ qml.PauliX(2)), qml.expval(qml.PauliY(1))]
    dev = qml.device("default.qubit")
    for original, restored in zip(circuits, decode_circuits(encode_circuits(circuits, max_ops=12))):
        (expected,) = qml.execute([QuantumScript(original.operations, measurements)], dev)
        (got,) = qml.execute([QuantumScript(restored.operations, measurements)], dev)
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_row_layout():
    array = encode_circuits([[qml.CRX(0.5, wires=[2, 0])], [qml.Hadamard(1), qml.U2(0.1, 0.2, 3)]])
    np.testing.assert_array_equal(
        array,
        [
            [[OP_CODES["CRX"], 2, 0, -1, 0.5, 0, 0], [0, 0, 0, 0, 0, 0, 0]],
            [[OP_CODES["Hadamard"], 1, -1, -1, 0, 0, 0], [OP_CODES["U2"], 3, -1, -1, 0.1, 0.2, 0]],
        ],
    )


def test_labels_dtype_and_framework_inputs():
    circuit = [qml.RY(0.3, "b"), qml.CNOT(["a", "b"])]
    array = encode_circuits([circuit], wires=["a", "b"], dtype=np.float32, max_params=1)
    assert array.dtype == np.float32 and array.shape == (1, 2, row_width(1))
    (restored,) = decode_circuits(torch.from_numpy(array), wires=["a", "b"])
    assert restored.operations[1].wires.labels == ("a", "b")
    assert restored.operations[0].data[0] == pytest.approx(0.3, rel=1e-7)
    (single,) = decode_circuits(array[0], wires=["a", "b"])  # one (max_ops, k) block
    assert qml.equal(single, restored)


def test_empty_batch_and_empty_circuits():
    assert encode_circuits([]).shape == (0, 0, row_width(3))
    array = encode_circuits([[], [qml.PauliX(0)]], max_ops=3)
    assert array.shape == (2, 3, row_width(3))
    assert [len(c.operations) for c in decode_circuits(array)] == [0, 1]


@pytest.mark.parametrize(
    ("circuits", "kwargs", "match"),
    [
        ([[qml.MultiRZ(0.1, wires=[0, 1])]], {}, "MultiRZ is not in the circuit-tensor vocabulary"),
        ([[qml.QubitUnitary(np.eye(2), 0)]], {}, "QubitUnitary is not in"),
        ([[qml.Rot(0.1, 0.2, 0.3, 0)]], {"max_params": 2}, "more than max_params=2"),
        ([[qml.PauliX(0)] * 3], {"max_ops": 2}, "more than max_ops=2"),
        ([[qml.RX(0.1, "a")]], {}, "pass wires="),
        ([[qml.RX(0.1, "z")]], {"wires": ["a"]}, "not in wires="),
        ([[qml.Identity([0, 1])]], {}, "acts on 2 wires"),
        ([QuantumScript([qml.RX(np.array([0.1, 0.2]), 0)])], {}, "broadcast"),
        ([[qml.RX(0.1, 0)]], {"dtype": np.int32}, "float dtype"),
    ],
)
def test_encoding_errors(circuits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        encode_circuits(circuits, **kwargs)


def test_decoding_errors():
    good = encode_circuits([[qml.CNOT([0, 1])]])
    bad_code = good.copy()
    bad_code[0, 0, 0] = len(OP_VOCABULARY) + 1
    with pytest.raises(ValueError, match="op code 38 is not in the vocabulary"):
        decode_circuits(bad_code)
    bad_wire = good.copy()
    bad_wire[0, 0, 2] = 0.5
    with pytest.raises(ValueError, match="CNOT has invalid wire indices"):
        decode_circuits(bad_wire)
    same_wire = good.copy()
    same_wire[0, 0, 2] = 0
    with pytest.raises(ValueError, match="cannot build CNOT"):
        decode_circuits(same_wire)
    with pytest.raises(ValueError, match="shape"):
        decode_circuits(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no label"):
        decode_circuits(good, wires=["only"])
