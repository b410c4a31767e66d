"""OpenQASM 3 <-> PennyLane: symbols as ``input`` variables, modifiers, measurements into
bits; round trips keep the unitary exactly (global phase included)."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from convert_support import COMMON_GATES, random_circuit, unitary

from qstore_pl.circuits import ParametrizedCircuit, Symbol, from_qasm3, to_qasm3
from qstore_pl.circuits.qasm3 import DEFINITIONS

EXTRA_GATES = [(qml.IsingYY, 2, 1), (qml.U3, 1, 3), (qml.CY, 2, 0), (qml.CH, 2, 0)]


@pytest.mark.parametrize("seed", range(6))
def test_random_parametrised_circuits_round_trip(seed):
    pc, values = random_circuit(seed, n_wires=3, gates=COMMON_GATES + EXTRA_GATES)
    text = to_qasm3(pc)
    assert "input array[float[64], 5] w;" in text and "input float[64] x;" in text
    back = from_qasm3(text)
    assert isinstance(back, ParametrizedCircuit)
    assert set(back.symbols.items()) <= {("w", (5,)), ("x", ())}  # the inputs used
    assert [op.name for op in back.operations] == [op.name for op in pc.operations]
    used = {k: v for k, v in values.items() if k in back.symbols}
    np.testing.assert_allclose(
        unitary(back.bind(**used), [0, 1, 2]), unitary(pc.bind(**values), [0, 1, 2]), atol=1e-12
    )


def test_modifiers_phase_and_measurements_round_trip():
    w = Symbol("w", (1, 0))
    ops = [
        qml.ctrl(qml.RY(w, 2), control=[0, 1], control_values=[0, 1]),
        qml.adjoint(qml.SX(1)),
        qml.ctrl(qml.GlobalPhase(0.4), control=1),
        qml.GlobalPhase(-2 * w),
    ]
    pc = ParametrizedCircuit(ops, [qml.counts(wires=[2, 0])], {"w": (2, 2)})
    text = to_qasm3(pc)
    assert "negctrl @ ctrl @ ry(w[1, 0]) q[0], q[1], q[2];" in text
    assert "inv @ sx q[1];" in text and "gphase(2.0*w[1, 0]);" in text
    assert text.endswith("c[0] = measure q[2];\nc[1] = measure q[0];\n")
    back = from_qasm3(text)
    assert back.measurements == [qml.counts(wires=[2, 0])]
    assert from_qasm3(text, measurement="probs").measurements == [qml.probs(wires=[2, 0])]
    values = {"w": np.array([[0.1, 0.2], [0.7, -0.4]])}
    np.testing.assert_allclose(
        unitary(back.bind(**values), [0, 1, 2]), unitary(pc.bind(**values), [0, 1, 2]), atol=1e-12
    )


def test_linear_input_expressions_and_other_spellings():
    text = """OPENQASM 3;
    include "stdgates.inc";
    /* a block
       comment */
    input angle[32] theta;
    input float[64] phi;
    qubit[2] q;
    qreg r[1];
    bit[2] c;
    rx(2*theta + pi/4) q[0];   // split into rx(2*theta) rx(pi/4)
    crz(theta - phi / 2) q[0], r[0];
    cphase(-phi) q[1], q[0];
    U(theta, 0.1, 0.2) q[1];
    h q;
    measure q -> c;
    """
    pc = from_qasm3(text)
    assert pc.symbols == {"theta": (), "phi": ()}
    assert pc.measurements == [qml.counts(wires=[0, 1])]
    t, p = 0.37, -1.2
    expected = [
        qml.RX(2 * t + np.pi / 4, 0),
        qml.CRZ(t - p / 2, [0, 2]),
        qml.ControlledPhaseShift(-p, [1, 0]),
        qml.U3(t, 0.1, 0.2, 1),
        qml.Hadamard(0),
        qml.Hadamard(1),
    ]
    np.testing.assert_allclose(
        unitary(pc.bind(theta=t, phi=p), [0, 1, 2]), unitary(expected, [0, 1, 2]), atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_written_gate_definitions_are_the_standard_gates(name):
    # the body of each definition, run as gates, is the gate the name is read as
    body = DEFINITIONS[name].split("{")[1].rstrip("} ")
    body = body.replace("theta", "0.7").replace(" a", " q[0]").replace(" b", " q[1]")
    text = f"OPENQASM 3.0;\nqubit[2] q;\n{body}"
    gate = {"rxx": qml.IsingXX, "ryy": qml.IsingYY, "rzz": qml.IsingZZ}[name]
    np.testing.assert_allclose(
        unitary(from_qasm3(text), [0, 1]), qml.matrix(gate(0.7, [0, 1])), atol=1e-12
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("qubit q; x q;", "OPENQASM 3.0"),
        ("OPENQASM 2.0; qubit q;", "expected OPENQASM 3"),
        ("OPENQASM 3; qubit q; foo q;", "line 1: unknown gate 'foo'"),
        ("OPENQASM 3; input float x; qubit q; rx(x*x) q;", r"not linear"),
        ("OPENQASM 3; qubit q; rx(y) q;", r"'y' is not a declared input"),
        ("OPENQASM 3; qubit q; bit c; c = measure q; x q;", r"measured before"),
        ("OPENQASM 3; qubit q;\nif (true) { x q; }", r"line 2: blocks"),
        ("OPENQASM 3; gate g a { x a; } qubit q;", r"definition of gate 'g'"),
        ("OPENQASM 3; qubit q; reset q;", r"'reset' is not supported"),
        ("OPENQASM 3; qubit q; pow(2) @ x q;", r"'pow @' is not supported"),
        ("OPENQASM 3; qubit[2] q; cx q[0];", r"cx acts on 2 qubits, got 1"),
        ("OPENQASM 3; creg c;", r"malformed register declaration creg 'c'$"),
        ("OPENQASM 3; input float[64] a; qubit[1] q; rx(a[true]) q;", r"integer constants"),
    ],
)
def test_bad_qasm3_raises_a_clear_error(text, match):
    with pytest.raises(ValueError, match=match):
        from_qasm3(text)


def test_to_qasm3_errors_name_the_operator():
    with pytest.raises(ValueError, match=r"OpenQASM 3 \(stdgates.inc\) cannot express Rot"):
        to_qasm3([qml.Rot(0.1, 0.2, 0.3, 0)])
    text = to_qasm3([qml.Rot(0.1, 0.2, 0.3, 0)], decompose=True)
    np.testing.assert_allclose(
        unitary(from_qasm3(text), [0]), qml.matrix(qml.Rot(0.1, 0.2, 0.3, 0)), atol=1e-12
    )
    with pytest.raises(ValueError, match=r"expval"):
        to_qasm3(qml.tape.QuantumScript([qml.X(0)], [qml.expval(qml.Z(0))]))


def test_templates_holding_symbol_arrays_are_written_decomposed():
    def ansatz(w):
        qml.AngleEmbedding(w[0:2], wires=[0, 1], rotation="Y")
        qml.BasicEntanglerLayers(w[2:4].reshape(1, 2), wires=[0, 1])

    pc = ParametrizedCircuit.from_function(ansatz, w=4)
    with pytest.raises(ValueError, match=r"cannot express AngleEmbedding.*decompose=True"):
        to_qasm3(pc)
    back = from_qasm3(to_qasm3(pc, decompose=True))
    assert back.symbols == {"w": (4,)}
    values = {"w": np.array([0.1, 0.5, -0.3, 0.9])}
    np.testing.assert_allclose(
        unitary(back.bind(**values), [0, 1]), unitary(pc.bind(**values), [0, 1]), atol=1e-12
    )
