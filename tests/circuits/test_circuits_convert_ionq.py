"""IonQ JSON <-> PennyLane: qis round trips keep the unitary (up to global phase), native
circuits (compiled to GPI/GPI2/MS, phases in turns) keep the probabilities, and native
JSON runs on the offline IonQ emulator through pennylane-ionq's client."""

from __future__ import annotations

import json

import numpy as np
import pennylane as qml
import pytest
from convert_support import COMMON_GATES, assert_equal_up_to_phase, random_circuit, unitary
from pennylane_ionq.api_client import APIClient

from qstore_pl.circuits import from_ionq_json, symbol_array, to_ionq_json
from qstore_pl.circuits.ionq_native import gpi2_matrix, gpi_matrix, ms_matrix
from qstore_pl.devices.ionq.emulator import IonQEmulator

QIS_GATES = [
    g
    for g in COMMON_GATES
    if g[0]
    in (
        qml.RX,
        qml.RY,
        qml.RZ,
        qml.Hadamard,
        qml.S,
        qml.T,
        qml.SX,
        qml.PauliX,
        qml.PauliY,
        qml.CNOT,
        qml.SWAP,
        qml.IsingXX,
        qml.IsingZZ,
        qml.Toffoli,
    )
]


def _bound(seed, gates=None, n_wires=3):
    pc, values = random_circuit(seed, n_wires=n_wires, gates=gates)
    return pc.bind(**values)


def _probs(tape, n):
    dev = qml.device("default.qubit")
    return qml.execute([qml.tape.QuantumScript(tape.operations, [qml.probs(wires=range(n))])], dev)[
        0
    ]


@pytest.mark.parametrize("seed", range(4))
def test_qis_round_trip_keeps_the_unitary(seed):
    tape = _bound(seed, QIS_GATES)
    data = to_ionq_json(tape)
    assert data["gateset"] == "qis" and data["qubits"] == 3
    json.dumps(data, allow_nan=False)  # plain JSON
    back = from_ionq_json(json.dumps(data))
    assert back.measurements == [qml.probs(wires=[0, 1, 2])]
    assert_equal_up_to_phase(unitary(back, [0, 1, 2]), unitary(tape, [0, 1, 2]))


@pytest.mark.parametrize("seed", range(3))
def test_qis_decompose_writes_every_common_gate(seed):
    tape = _bound(seed)  # CZ, CRX, PhaseShift, CSWAP ... are not IonQ gates
    with pytest.raises(ValueError, match=r"IonQ's qis gateset cannot express \w+.*decompose=True"):
        to_ionq_json(tape)
    back = from_ionq_json(to_ionq_json(tape, decompose=True))
    assert_equal_up_to_phase(unitary(back, [0, 1, 2]), unitary(tape, [0, 1, 2]))


def test_qis_gate_fields_follow_ionq_api():
    tape = qml.tape.QuantumScript(
        [
            qml.RX(0.5, 1),
            qml.CNOT([1, 0]),
            qml.Toffoli([0, 1, 2]),
            qml.IsingXX(0.2, [2, 0]),
            qml.adjoint(qml.S(0)),
        ]
    )
    assert to_ionq_json(tape)["circuit"] == [
        {"gate": "rx", "target": 1, "rotation": 0.5},
        {"gate": "cnot", "control": 1, "target": 0},
        {"gate": "cnot", "controls": [0, 1], "target": 2},
        {"gate": "xx", "targets": [2, 0], "rotation": 0.2},
        {"gate": "si", "target": 0},
    ]


def test_native_gates_read_as_standard_gates_with_ionq_matrices():
    for gate, matrix in [("gpi", gpi_matrix(0.3)), ("gpi2", gpi2_matrix(0.3))]:
        tape = from_ionq_json(
            {
                "gateset": "native",
                "qubits": 1,
                "circuit": [{"gate": gate, "target": 0, "phase": 0.3}],
            }
        )
        assert_equal_up_to_phase(unitary(tape, [0]), matrix)
    ms = {"gate": "ms", "targets": [0, 1], "phases": [0.1, 0.7], "angle": 0.2}
    tape = from_ionq_json({"gateset": "native", "qubits": 2, "circuit": [ms]})
    assert_equal_up_to_phase(unitary(tape, [0, 1]), ms_matrix(0.1, 0.7, 0.2))


@pytest.mark.parametrize("seed", range(3))
def test_native_keeps_the_probabilities(seed):
    tape = _bound(seed)
    data = to_ionq_json(tape, gateset="native")
    assert data["gateset"] == "native"
    assert {g["gate"] for g in data["circuit"]} <= {"gpi", "gpi2", "ms"}
    assert all(0 <= g.get("phase", 0) < 1 for g in data["circuit"])  # turns
    np.testing.assert_allclose(_probs(from_ionq_json(data), 3), _probs(tape, 3), atol=1e-10)


@pytest.mark.parametrize("gateset", ["native", "qis"])
def test_json_runs_on_the_offline_emulator(gateset):
    tape = _bound(11, n_wires=3, gates=None if gateset == "native" else QIS_GATES)
    assert any(op.name == "Toffoli" for op in tape.operations)  # a cnot with two controls
    data = to_ionq_json(tape, gateset=gateset)
    expected = _probs(tape, 3)
    with IonQEmulator(seed=3) as server:
        client = APIClient(api_key="test-key", max_retries=0)
        client.BASE_URL = f"{server.url}/v0.4"
        job = {"type": "ionq.circuit.v1", "input": data, "backend": "simulator", "shots": 1000}
        response = client.post("jobs", job)
        assert response.status_code == 200, response.text
        job_id = response.json()["id"]
        result = client.get(f"jobs/{job_id}/results/probabilities").json()
    # IonQ keys basis states with qubit 0 as the least significant bit
    got = np.zeros(8)
    for key, p in result.items():
        got[int(format(int(key), "03b")[::-1], 2)] = p
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_wire_order_and_measurements():
    tape = qml.tape.QuantumScript([qml.PauliX("a"), qml.CNOT(["a", "b"])], [qml.counts()])
    data = to_ionq_json(tape, wire_order=["b", "a"])
    assert data["circuit"] == [
        {"gate": "x", "target": 1},
        {"gate": "cnot", "control": 1, "target": 0},
    ]
    with pytest.raises(ValueError, match=r"expval\(Z\(0\)\).*qml.probs"):
        to_ionq_json(qml.tape.QuantumScript([qml.X(0)], [qml.expval(qml.Z(0))]))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"qubits": 1, "circuit": [{"gate": "foo", "target": 0}]},
            r"circuit\[0\] \(foo\).*not a gate of IonQ's qis",
        ),
        (
            {"qubits": 1, "circuit": [{"gate": "rx", "target": 0}]},
            r"'rotation' must be a finite number",
        ),
        (
            {"qubits": 1, "circuit": [{"gate": "rx", "target": 0, "rotation": 10**400}]},
            r"'rotation' must be a finite number",
        ),
        (
            {
                "gateset": "native",
                "qubits": 1,
                "circuit": [{"gate": "gpi", "target": 0, "phase": float("nan")}],
            },
            r"'phase' must be a finite number",
        ),
        (
            {"qubits": 2, "circuit": [{"gate": "x", "target": 2}]},
            r"'target' must be a qubit index below 2",
        ),
        ({"qubits": 2, "circuit": [{"gate": "cnot", "target": 1}]}, r"cnot needs a 'control'"),
        (
            {
                "gateset": "native",
                "qubits": 1,
                "circuit": [{"gate": "rx", "target": 0, "rotation": 1}],
            },
            r"not a gate of IonQ's native gateset",
        ),
        ({"gateset": "other", "qubits": 1, "circuit": []}, r"unknown IonQ gateset"),
        ({"qubits": 0, "circuit": []}, r"'qubits' must be a positive integer"),
    ],
)
def test_bad_ionq_json_names_the_gate(data, match):
    with pytest.raises(ValueError, match=match):
        from_ionq_json(data)


def test_symbols_must_be_bound_first():
    pc, _ = random_circuit(0, gates=QIS_GATES)
    with pytest.raises(TypeError, match=r"bind the ParametrizedCircuit first"):
        to_ionq_json(pc)
    with pytest.raises(ValueError, match=r"symbolic parameter"):
        to_ionq_json(pc.operations)
    template = qml.AngleEmbedding(symbol_array("w", 2), wires=[0, 1])
    with pytest.raises(ValueError, match=r"AngleEmbedding has a symbolic parameter"):
        to_ionq_json([template], decompose=True)


def test_native_gates_are_written_as_they_are():
    from pennylane_ionq.ops import GPI, GPI2, MS

    ops = [GPI(0.1, wires=0), MS(0.2, 0.3, 0.25, wires=[0, 1]), GPI2(0.7, wires=1)]
    assert to_ionq_json(ops, gateset="native")["circuit"] == [
        {"gate": "gpi", "target": 0, "phase": 0.1},
        {"gate": "ms", "targets": [0, 1], "phases": [0.2, 0.3], "angle": 0.25},
        {"gate": "gpi2", "target": 1, "phase": 0.7},
    ]
