"""Cirq <-> PennyLane conversion: unitaries (cirq.unitary vs qml.matrix) equal up to
global phase, sympy symbols kept as Symbols, measurements carried, errors naming the gate."""

from __future__ import annotations

import cirq
import numpy as np
import pennylane as qml
import pytest
import sympy
from convert_support import COMMON_GATES, assert_equal_up_to_phase, random_circuit, unitary

from qstore_pl.circuits import ParametrizedCircuit, Symbol, from_cirq, to_cirq

EXTRA_GATES = [
    (qml.IsingYY, 2, 1),
    (qml.IsingXY, 2, 1),
    (qml.CY, 2, 0),
    (qml.CH, 2, 0),
    (qml.ISWAP, 2, 0),
    (qml.CCZ, 3, 0),
]
Q = cirq.LineQubit.range(3)


def _resolver(values):
    return {"x": values["x"], **{f"w[{i}]": v for i, v in enumerate(values["w"])}}


def _cirq_unitary(circuit, values=None, n=3):
    circuit = cirq.drop_terminal_measurements(circuit)
    if values is not None:
        circuit = cirq.resolve_parameters(circuit, _resolver(values))
    return circuit.unitary(qubit_order=cirq.LineQubit.range(n))


@pytest.mark.parametrize("seed", range(6))
def test_random_parametrised_circuits_round_trip(seed):
    pc, values = random_circuit(seed, n_wires=3, gates=COMMON_GATES + EXTRA_GATES)
    circuit = to_cirq(pc)
    assert {s.name for s in cirq.parameter_symbols(circuit)} <= {f"w[{i}]" for i in range(5)} | {
        "x"
    }
    expected = unitary(pc.bind(**values), [0, 1, 2])
    assert_equal_up_to_phase(_cirq_unitary(circuit, values), expected)
    back = from_cirq(circuit, symbols={"w": 5})
    assert isinstance(back, ParametrizedCircuit)
    assert back.symbols == {"w": (5,), "x": ()}
    assert_equal_up_to_phase(unitary(back.bind(**values), [0, 1, 2]), expected)
    # the same gates come back (no phase gates, no splitting; Cirq packs them in moments)
    assert sorted(op.name for op in back.operations) == sorted(op.name for op in pc.operations)


def test_cirq_powers_and_controls_with_linear_symbols():
    x, w0, w1 = sympy.symbols("x w[0] w[1]")
    circuit = cirq.Circuit(
        cirq.X(Q[0]) ** (2 * x + 0.3),
        cirq.rz(w0 - x).on(Q[1]),
        cirq.CNOT(Q[0], Q[1]) ** x,  # controlled X**t: the phase under control matters
        cirq.ZZ(Q[1], Q[2]) ** w1,
        cirq.ControlledGate(cirq.Y**w0, control_values=[0]).on(Q[2], Q[0]),
        cirq.ISWAP(Q[0], Q[2]) ** (w1 / 2),
        cirq.FSimGate(theta=x, phi=0.4).on(Q[1], Q[2]),  # decomposed
        cirq.PhasedXPowGate(phase_exponent=0.2, exponent=0.7).on(Q[0]),  # numeric: unitary
        cirq.H(Q[1]),
        cirq.S(Q[2]) ** -1,
    )
    pc = from_cirq(circuit)
    assert pc.symbols == {"x": (), "w": (2,)}
    assert pc.operations[0].name == "RX" and pc.operations[0].data == (Symbol("x", (), 2 * np.pi),)
    values = {"x": 0.37, "w": np.array([0.9, -1.3])}
    assert_equal_up_to_phase(unitary(pc.bind(**values), [0, 1, 2]), _cirq_unitary(circuit, values))
    back = to_cirq(pc)
    assert_equal_up_to_phase(_cirq_unitary(back, values), _cirq_unitary(circuit, values))


def test_measurements_and_qubit_kinds():
    a, b = cirq.GridQubit(0, 1), cirq.GridQubit(1, 0)
    circuit = cirq.Circuit(cirq.H(a), cirq.CNOT(a, b), cirq.measure(b, a, key="z"))
    tape = from_cirq(circuit)
    assert tape.measurements == [qml.counts(wires=[1, 0])]
    assert from_cirq(circuit, measurement="probs").measurements == [qml.probs(wires=[1, 0])]
    back = to_cirq(tape)
    (m,) = [op for op in back.all_operations() if cirq.is_measurement(op)]
    assert m.qubits == (cirq.LineQubit(1), cirq.LineQubit(0))
    result = cirq.Simulator(seed=1).run(back, repetitions=50)
    bits = result.measurements["m"]
    assert np.all(bits[:, 0] == bits[:, 1])  # a Bell pair


def test_wire_labels_follow_wire_order():
    tape = qml.tape.QuantumScript([qml.RY(0.4, "a"), qml.CNOT(["a", "b"])])
    circuit = to_cirq(tape, wire_order=["b", "a"])
    np.testing.assert_allclose(
        circuit.unitary(qubit_order=cirq.LineQubit.range(2)),
        qml.matrix(tape, wire_order=["b", "a"]),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    ("circuit", "match"),
    [
        (cirq.Circuit(cirq.rx(sympy.Symbol("x") ** 2).on(Q[0])), r"not linear in x"),
        (cirq.Circuit(cirq.measure(Q[0]), cirq.X(Q[0])), r"measured before it"),
        (cirq.Circuit(cirq.depolarize(0.1).on(Q[0])), r"depolarize.*no PennyLane form"),
        (cirq.Circuit(cirq.rx(sympy.Symbol("a b")).on(Q[0])), r"'a b' has no Symbol form"),
    ],
)
def test_cirq_errors_name_the_operation(circuit, match):
    with pytest.raises(ValueError, match=match):
        from_cirq(circuit)


def test_to_cirq_errors_and_decompose():
    pc = ParametrizedCircuit(
        [qml.U3(Symbol("w", (0,)), 0.2, Symbol("w", (1,)), wires=0), qml.CNOT([0, 1])],
        [],
        {"w": (2,)},
    )
    with pytest.raises(ValueError, match=r"Cirq cannot express U3 on wires \[0\].*decompose=True"):
        to_cirq(pc)
    circuit = to_cirq(pc, decompose=True)
    values = {"w": np.array([0.4, -0.8])}
    resolved = cirq.resolve_parameters(circuit, {"w[0]": 0.4, "w[1]": -0.8})
    assert_equal_up_to_phase(
        resolved.unitary(qubit_order=Q[:2]), unitary(pc.bind(**values), [0, 1])
    )
    with pytest.raises(ValueError, match=r"expval\(Z\(0\)\).*qml.counts"):
        to_cirq(qml.tape.QuantumScript([qml.X(0)], [qml.expval(qml.Z(0))]))
