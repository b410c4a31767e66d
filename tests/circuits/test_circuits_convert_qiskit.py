"""Qiskit <-> PennyLane conversion: unitaries (Qiskit's Operator vs qml.matrix) equal up
to global phase, symbols kept both ways, measurements carried, errors naming the gate."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from convert_support import assert_equal_up_to_phase, random_circuit, unitary
from qiskit import QuantumCircuit
from qiskit.circuit import (
    AnnotatedOperation,
    ControlModifier,
    InverseModifier,
    Parameter,
    ParameterVector,
)
from qiskit.circuit.library import CUGate, RYGate, SGate, XGate
from qiskit.quantum_info import Operator

from qstore_pl.circuits import ParametrizedCircuit, Symbol, from_qiskit, to_qiskit

EXTRA_GATES = [
    (qml.U3, 1, 3),
    (qml.IsingYY, 2, 1),
    (qml.CY, 2, 0),
    (qml.CH, 2, 0),
    (qml.ISWAP, 2, 0),
    (qml.ECR, 2, 0),
    (qml.CCZ, 3, 0),
]


def _qiskit_values(qc, values):
    """Qiskit's binding of our symbol values (w[i] from a vector, x a Parameter)."""
    out = {}
    for p in qc.parameters:
        out[p] = values["x"] if p.name == "x" else values["w"][p.index]
    return out


def _qiskit_unitary(qc, values=None):
    qc = qc.remove_final_measurements(inplace=False)
    if values is not None:
        qc = qc.assign_parameters(_qiskit_values(qc, values))
    return Operator(qc).data


@pytest.mark.parametrize("seed", range(6))
def test_random_parametrised_circuits_round_trip(seed):
    from convert_support import COMMON_GATES

    pc, values = random_circuit(seed, n_wires=3, gates=COMMON_GATES + EXTRA_GATES)
    qc = to_qiskit(pc)
    assert {p.name for p in qc.parameters} <= {f"w[{i}]" for i in range(5)} | {"x"}
    expected = unitary(pc.bind(**values), wire_order=[0, 1, 2])
    # Qiskit is little-endian: qubit 0 is the least significant bit
    assert_equal_up_to_phase(_qiskit_unitary(qc, values), unitary(pc.bind(**values), [2, 1, 0]))
    back = from_qiskit(qc)
    assert isinstance(back, ParametrizedCircuit)
    assert back.symbols["w"] == (5,)
    assert_equal_up_to_phase(unitary(back.bind(**values), [0, 1, 2]), expected)


def test_linear_expressions_stay_symbolic():
    x, w = Parameter("x"), ParameterVector("w", 3)
    qc = QuantumCircuit(3)
    qc.rx(2 * x + 1, 0)
    qc.ry(w[1] * 0.5 - x, 1)
    qc.crz(-w[2], 0, 1)
    qc.u(x, 0.3, w[0], 1)
    qc.rzz(x + w[1], 0, 2)
    qc.crx(w[0], 2, 0, ctrl_state=0)  # open control
    qc.append(RYGate(w[2]).control(2, ctrl_state=1, annotated=False), [0, 1, 2])
    qc.append(RYGate(x).control(2, ctrl_state=2, annotated=True), [1, 2, 0])
    qc.append(AnnotatedOperation(SGate(), [InverseModifier(), ControlModifier(1, 0)]), [2, 0])
    qc.global_phase = x / 3 + 0.2
    pc = from_qiskit(qc)
    assert pc.symbols == {"w": (3,), "x": ()}
    assert pc.operations[0].name == "RX" and pc.operations[0].data == (Symbol("x", (), 2.0),)
    assert pc.operations[1] == qml.RX(1.0, 0)
    values = {"x": 0.37, "w": np.array([0.1, -0.7, 1.3])}
    bound = qc.assign_parameters({x: values["x"], w: values["w"]})
    # global_phase is carried too: the unitaries are equal, not only up to phase
    np.testing.assert_allclose(
        unitary(pc.bind(**values), [2, 1, 0]), Operator(bound).data, atol=1e-12
    )
    back = to_qiskit(pc)
    np.testing.assert_allclose(_qiskit_unitary(back, values), Operator(bound).data, atol=1e-12)


def test_numeric_circuit_gives_a_tape_matching_qml_from_qiskit():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.rz(0.3, 1)
    qc.append(XGate().control(1, ctrl_state=0, annotated=False), [1, 0])
    tape = from_qiskit(qc)
    assert isinstance(tape, qml.tape.QuantumScript)
    np.testing.assert_allclose(unitary(tape, [1, 0]), Operator(qc).data, atol=1e-12)


def test_final_measurements_are_carried_both_ways():
    qc = QuantumCircuit(3, 2)
    qc.h(0)
    qc.cx(0, 2)
    qc.measure(2, 0)
    qc.measure(0, 1)
    tape = from_qiskit(qc)
    assert tape.measurements == [qml.counts(wires=[2, 0])]
    assert from_qiskit(qc, measurement="probs").measurements == [qml.probs(wires=[2, 0])]
    assert from_qiskit(qc, measurement=None).measurements == []
    back = to_qiskit(tape)
    measures = [
        (back.find_bit(i.qubits[0]).index, back.find_bit(i.clbits[0]).index)
        for i in back.data
        if i.operation.name == "measure"
    ]
    assert measures == [(2, 0), (0, 1)]
    # counts from the same circuit agree (the measured bits in the same order)
    dev = qml.device("default.qubit")
    probs = qml.execute([from_qiskit(back, measurement="probs")], dev)[0]
    np.testing.assert_allclose(probs, [0.5, 0, 0, 0.5], atol=1e-12)


def test_wire_order_and_labels():
    tape = qml.tape.QuantumScript([qml.RX(0.4, "a"), qml.CNOT(["a", "b"])])
    qc = to_qiskit(tape, wire_order=["b", "a"])
    np.testing.assert_allclose(
        Operator(qc).data, qml.matrix(tape, wire_order=["a", "b"]), atol=1e-12
    )


def test_qubit_unitary_is_little_endian_on_the_qiskit_side():
    matrix = qml.matrix(qml.CNOT([0, 1]) @ qml.RY(0.3, 1), wire_order=[0, 1])
    tape = qml.tape.QuantumScript([qml.QubitUnitary(matrix, wires=[0, 1])])
    qc = to_qiskit(tape)
    np.testing.assert_allclose(Operator(qc).data, qml.matrix(tape, wire_order=[1, 0]), atol=1e-12)
    np.testing.assert_allclose(unitary(from_qiskit(qc), [0, 1]), matrix, atol=1e-12)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda qc, x: qc.rx(x * x, 0), r"not linear in x.*bind it"),
        (lambda qc, x: qc.u(x + 1, 0, 0, 0), r"x \+ 1.0 of U3.*decompose"),
        (lambda qc, x: qc.reset(0), r"reset is not a unitary gate"),
        (lambda qc, x: (qc.measure(0, 0), qc.x(0)), r"measured before.*qml.from_qiskit"),
        (lambda qc, x: qc.append(CUGate(x, 0, 0, 0.1), [0, 1]), r"cu has no PennyLane gate"),
        (lambda qc, x: qc.rx(Parameter("a b"), 0), r"'a b' has no Symbol form"),
    ],
)
def test_qiskit_errors_name_the_instruction(build, match):
    qc = QuantumCircuit(2, 1)
    build(qc, Parameter("x"))
    with pytest.raises(ValueError, match=match):
        from_qiskit(qc)


@pytest.mark.parametrize(
    ("tape", "match"),
    [
        (
            qml.tape.QuantumScript([qml.Rot(0.1, 0.2, 0.3, 0)]),
            r"Qiskit cannot express Rot.*decompose=True",
        ),
        (
            qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.expval(qml.Z(0))]),
            r"expval\(Z\(0\)\).*qml.counts",
        ),
        (qml.tape.QuantumScript([qml.RX(np.array([0.1, 0.2]), 0)]), r"broadcast batch"),
    ],
)
def test_to_qiskit_errors_name_the_operator(tape, match):
    with pytest.raises(ValueError, match=match):
        to_qiskit(tape)


def test_decompose_writes_what_qiskit_lacks_and_keeps_symbols():
    pc = ParametrizedCircuit(
        [
            qml.Rot(Symbol("w", (0,)), 0.2, Symbol("w", (1,), -1.0), wires=0),
            qml.MultiRZ(0.4, wires=[0, 1]),
        ],
        [],
        {"w": (2,)},
    )
    qc = to_qiskit(pc, decompose=True)
    values = {"w": np.array([0.3, -1.1])}
    assert_equal_up_to_phase(_qiskit_unitary(qc, values), unitary(pc.bind(**values), [1, 0]))
    with pytest.raises(ValueError, match="computes with its symbolic parameter"):
        to_qiskit(
            ParametrizedCircuit(
                [qml.CRot(Symbol("w", (0,)), 0.1, Symbol("w", (1,)), wires=[0, 1])], [], {"w": (2,)}
            ),
            decompose=True,
        )


def test_transpiled_circuit_keeps_symbols_and_its_symbolic_global_phase():
    from qiskit import transpile

    x, w = Parameter("x"), ParameterVector("w", 2)
    qc = QuantumCircuit(2)
    qc.u(x, w[0], w[1], 0)
    qc.crx(2 * x, 0, 1)
    qc.ryy(w[0], 0, 1)
    lowered = transpile(qc, basis_gates=["rz", "sx", "x", "cx"], optimization_level=1)
    assert lowered.global_phase.parameters  # Qiskit tracks a symbolic phase
    pc = from_qiskit(lowered)
    values = {"x": 0.4, "w": np.array([0.3, -0.9])}
    bound = qc.assign_parameters({x: values["x"], w: values["w"]})
    np.testing.assert_allclose(unitary(pc.bind(**values), [1, 0]), Operator(bound).data, atol=1e-9)
