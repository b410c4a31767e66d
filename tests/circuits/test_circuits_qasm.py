"""OpenQASM 2.0 export and import (qstore_pl.circuits.qasm)."""

from __future__ import annotations

import math

import numpy as np
import pennylane as qml
import pytest
from pennylane.tape import QuantumScript

from qstore_pl.circuits import from_openqasm, to_openqasm
from qstore_pl.circuits.qasm import PENNYLANE_TO_QASM, QASM_GATES, evaluate_angle


def random_qelib1_ops(seed: int, n_ops: int = 25, n_wires: int = 4) -> list:
    """Operators of every kind to_openqasm writes, with random angles and wires."""
    rng = np.random.default_rng(seed)
    names = [*PENNYLANE_TO_QASM.values(), "cu3"]
    ops = []
    for _ in range(n_ops):
        build, n_params, n_qubits = QASM_GATES[names[rng.integers(len(names))]]
        angles = [float(x) for x in rng.normal(scale=3.0, size=n_params)]
        ops.append(build(angles, rng.choice(n_wires, size=n_qubits, replace=False).tolist()))
    return ops


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_is_exact(seed):
    ops = random_qelib1_ops(seed)
    text = to_openqasm(QuantumScript(ops))
    restored = from_openqasm(text).operations
    assert len(restored) == len(ops)
    for a, b in zip(ops, restored):
        assert qml.equal(a, b), (a, b)
        for x, y in zip(a.data, b.data):
            assert np.float64(x).tobytes() == np.float64(y).tobytes()


def test_every_mapped_gate_survives_a_round_trip():
    ops = [
        build([0.1 * (i + 1) for i in range(n_params)], list(range(n_qubits)))
        for build, n_params, n_qubits in QASM_GATES.values()
    ]
    text = to_openqasm(ops)
    written = [line.split("(")[0].split(" ")[0] for line in text.splitlines()[3:]]
    assert written == list(QASM_GATES)  # each builder's op is written as its own gate
    restored = from_openqasm(text).operations
    assert [type(op) for op in restored] == [type(op) for op in ops]
    assert all(qml.equal(a, b) for a, b in zip(ops, restored))


def test_written_text_is_plain_qasm():
    tape = QuantumScript(
        [qml.Hadamard("a"), qml.CNOT(["a", "b"]), qml.RZ(-0.0, "b"), qml.adjoint(qml.S("a"))],
        [qml.probs(wires=["a", "b"])],
    )
    text = to_openqasm(tape, measure=True)
    assert text == (
        "OPENQASM 2.0;\n"
        'include "qelib1.inc";\n'
        "qreg q[2];\n"
        "creg c[2];\n"
        "h q[0];\n"
        "cx q[0],q[1];\n"
        "rz(-0.0) q[1];\n"
        "sdg q[0];\n"
        "measure q[0] -> c[0];\n"
        "measure q[1] -> c[1];\n"
    )
    assert to_openqasm([qml.RX(0.5, 3)]).splitlines()[2] == "qreg q[4];"  # ints keep indices
    assert "q[1]" in to_openqasm([qml.RX(0.5, 3)], wire_order=[7, 3])


def test_hand_written_qasm_with_pi_expressions():
    text = """OPENQASM 2.0;
    include "qelib1.inc";
    // two registers: q is wires 0-1, r is wire 2
    qreg q[2];
    qreg r[1];
    creg c[3];
    h q;                      // applied to each qubit of q
    rx(pi/2) q[0];
    ry(-pi / 4) r[0];
    u3(2*pi^2, 0.25e1, sin(pi/6)) q[1];
    U(pi, 0, pi) r[0];
    CX q[0], r[0];
    cu1(pi/8) q[1], q[0];
    barrier q, r;
    measure q -> c;
    """
    tape = from_openqasm(text, measurements=[qml.expval(qml.PauliZ(2))])
    expected = [
        qml.Hadamard(0),
        qml.Hadamard(1),
        qml.RX(math.pi / 2, 0),
        qml.RY(-math.pi / 4, 2),
        qml.U3(2 * math.pi**2, 2.5, math.sin(math.pi / 6), wires=1),
        qml.U3(math.pi, 0.0, math.pi, wires=2),
        qml.CNOT([0, 2]),
        qml.ControlledPhaseShift(math.pi / 8, wires=[1, 0]),
        qml.Barrier(wires=[0, 1, 2]),
    ]
    assert len(tape.operations) == len(expected)
    assert all(qml.equal(a, b, atol=0, rtol=0) for a, b in zip(tape.operations, expected))
    assert qml.equal(tape.measurements[0], qml.expval(qml.PauliZ(2)))


def test_parsed_circuit_runs_like_the_original():
    ops = random_qelib1_ops(11, n_ops=30, n_wires=3)
    measurements = [qml.probs(wires=[0, 1, 2])]
    dev = qml.device("default.qubit")
    (expected,) = qml.execute([QuantumScript(ops, measurements)], dev)
    (got,) = qml.execute([from_openqasm(to_openqasm(ops), measurements)], dev)
    np.testing.assert_array_equal(expected, got)


def test_decompose_writes_what_qasm_cannot_express():
    ops = [qml.Rot(0.1, 0.2, 0.3, wires=0), qml.CRot(0.4, 0.5, 0.6, wires=[0, 1])]
    dev = qml.device("default.qubit")
    measurements = [qml.state()]
    (expected,) = qml.execute([QuantumScript(ops, measurements)], dev)
    text = to_openqasm(ops, decompose=True)
    (got,) = qml.execute([from_openqasm(text, measurements)], dev)
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize(
    ("op", "match"),
    [
        (qml.Rot(0.1, 0.2, 0.3, wires=0), "cannot express Rot.*tape_to_json.*decompose=True"),
        (qml.GlobalPhase(0.3), "cannot express GlobalPhase"),
        (qml.ctrl(qml.U3(0.1, 0.2, 0.3, wires=0), control=1, control_values=0), r"C\(U3\)"),
        (qml.RX(np.array([0.1, 0.2]), 0), "broadcast batch"),
        (qml.RX(float("inf"), 0), "finite reals"),
    ],
)
def test_ops_qasm_cannot_express_name_themselves(op, match):
    with pytest.raises(ValueError, match=match):
        to_openqasm([op])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("OPENQASM 3.0;\nqubit q;", "only OpenQASM 2"),
        ("qreg q[1];\nx q[0];", "OPENQASM 2.0"),
        ('OPENQASM 2.0;\ninclude "other.inc";', "only qelib1.inc"),
        ("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];", "line 3: unknown gate 'foo'"),
        ("OPENQASM 2.0;\nqreg q[1];\nrx q[0];", "rx takes 1 parameters, got 0"),
        ("OPENQASM 2.0;\nqreg q[2];\ncx q[0];", "cx acts on 2 qubits, got 1"),
        ("OPENQASM 2.0;\nqreg q[1];\nx q[1];", "outside register size 1"),
        ("OPENQASM 2.0;\nqreg q[1];\nx r[0];", "not a declared quantum register"),
        ("OPENQASM 2.0;\nqreg q[2];\ncx q[0],q[0];", "repeats a qubit"),
        ("OPENQASM 2.0;\nqreg q[1];\nrx(__import__('os')) q[0];", "unsupported element"),
        ("OPENQASM 2.0;\nqreg q[1];\nrx(1/0) q[0];", "cannot evaluate"),
        ("OPENQASM 2.0;\nqreg q[1];\ngate g a { x a; }", "custom gate definitions"),
        ("OPENQASM 2.0;\nqreg q[1];\nreset q[0];", "'reset' is not supported"),
        ("OPENQASM 2.0;\nqreg q[1];\nx q[0]", "lacks its ';'"),
    ],
)
def test_bad_qasm_raises_a_clear_error(text, match):
    with pytest.raises(ValueError, match=match):
        from_openqasm(text)


def test_angle_expressions():
    assert evaluate_angle("pi/2") == math.pi / 2
    assert evaluate_angle("-pi") == -math.pi
    assert evaluate_angle("2^3 + ln(exp(1))") == 9.0
    assert evaluate_angle("0.1") == 0.1
    assert evaluate_angle(repr(1 / 3)) == 1 / 3
