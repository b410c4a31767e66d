"""Compilation to IonQ's native gates: equivalence by unitaries, fewer gates."""

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.circuits.ionq_native import (
    compile_native,
    gpi2_matrix,
    gpi_matrix,
    ms_matrix,
    native_matrix,
)

GATES_1Q = [qml.RX, qml.RY, qml.RZ, qml.PhaseShift]
FIXED_1Q = [qml.Hadamard, qml.S, qml.T, qml.PauliX, qml.PauliY, qml.SX]
GATES_2Q = [qml.CNOT, qml.CZ, qml.SWAP]
PARAM_2Q = [qml.CRX, qml.CRZ, qml.IsingXX, qml.IsingZZ, qml.ControlledPhaseShift]


def random_circuit(rng, n, depth):
    ops = []
    for _ in range(depth):
        kind = rng.integers(4)
        wires = [int(w) for w in rng.choice(n, size=2, replace=False)]
        if kind == 0:
            ops.append(GATES_1Q[rng.integers(len(GATES_1Q))](rng.uniform(-4, 4), wires[0]))
        elif kind == 1:
            ops.append(FIXED_1Q[rng.integers(len(FIXED_1Q))](wires[0]))
        elif kind == 2:
            ops.append(GATES_2Q[rng.integers(len(GATES_2Q))](wires))
        else:
            ops.append(PARAM_2Q[rng.integers(len(PARAM_2Q))](rng.uniform(-4, 4), wires))
    ops.append(qml.Rot(*rng.uniform(-3, 3, 3), wires=0))
    return ops


def assert_equal_up_to_phase(u, v):
    i = np.argmax(np.abs(v))
    phase = u.flat[i] / v.flat[i]
    assert abs(abs(phase) - 1) < 1e-9
    np.testing.assert_allclose(u, phase * v, atol=1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_random_circuits_compile_to_the_same_unitary(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed % 3
    ops = random_circuit(rng, n, depth=6 + 2 * seed)
    compiled = compile_native(ops)
    assert {op.name for op in compiled.operations} <= {"GPI", "GPI2", "MS"}
    original = qml.matrix(qml.tape.QuantumScript(ops), wire_order=range(n))
    assert_equal_up_to_phase(original, native_matrix(compiled, range(n)))


def test_a_different_circuit_is_told_apart():
    # the check itself must fail for a wrong compilation
    ops = [qml.RX(0.4, 0), qml.CNOT([0, 1])]
    compiled = compile_native([qml.RX(0.5, 0), qml.CNOT([0, 1])])
    with pytest.raises(AssertionError):
        assert_equal_up_to_phase(
            qml.matrix(qml.tape.QuantumScript(ops), wire_order=[0, 1]),
            native_matrix(compiled, [0, 1]),
        )


def test_native_matrices_are_unitary_and_ms_is_the_full_entangler():
    for m in (gpi_matrix(0.13), gpi2_matrix(0.71), ms_matrix(0.2, 0.9)):
        np.testing.assert_allclose(m @ m.conj().T, np.eye(len(m)), atol=1e-12)
    assert_equal_up_to_phase(ms_matrix(0, 0), qml.IsingXX.compute_matrix(np.pi / 2))


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([qml.RX(0.3, 0), qml.RX(-0.3, 0)], (0, 0)),  # inverses cancel
        ([qml.Hadamard(0), qml.Hadamard(0), qml.CNOT([0, 1]), qml.CNOT([0, 1])], (0, 0)),
        ([qml.RZ(0.3, 0), qml.RZ(1.1, 0), qml.T(0), qml.S(1)], (0, 0)),  # Z rotations are free
        ([qml.RX(0.2, 0), qml.RY(0.5, 0), qml.RZ(0.1, 0), qml.RX(0.7, 0)], (2, 0)),  # merged
        ([qml.RX(np.pi / 2, 0)], (1, 0)),
        ([qml.PauliX(0)], (1, 0)),
        ([qml.CNOT([0, 1])], (3, 1)),
    ],
)
def test_gate_counts_after_reduction(ops, expected):
    counts = compile_native(ops).counts
    assert (counts.one_qubit, counts.two_qubit) == expected


def test_fusion_needs_fewer_gates_than_compiling_gate_by_gate():
    n = 4
    ops = [qml.RX(0.1 * i, i) for i in range(n)]
    for layer in range(3):
        ops += [qml.RY(0.2 + layer, i) for i in range(n)] + [qml.RZ(0.3, i) for i in range(n)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
    one_by_one = [compile_native([op]).counts for op in ops]
    fused = compile_native(ops).counts
    assert fused.two_qubit == sum(c.two_qubit for c in one_by_one) == 12
    assert fused.one_qubit < 0.6 * sum(c.one_qubit for c in one_by_one)


class Opaque(qml.operation.Operation):
    num_wires = 3
    num_params = 0


def test_gates_without_decomposition_or_small_matrix_are_refused():
    with pytest.raises(ValueError, match="cannot compile Opaque"):
        compile_native([Opaque(wires=[0, 1, 2])])
