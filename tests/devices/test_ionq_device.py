"""qstore.ionq: the real pennylane-ionq client against the offline IonQ emulator."""

import logging

import numpy as np
import pennylane as qml
import pytest
import requests
from ionq_support import API_KEY, emulator_server, exact, two_qubit_circuit

from qstore_pl.devices.ionq.device import IonQJobError, IonQTimeoutError

FAST = {"retries": 2, "backoff": 0.01}

emulator = pytest.fixture(emulator_server, name="emulator")


def asymmetric(dev, shots=20000):
    @qml.qnode(dev, shots=shots)
    def circuit():
        qml.RY(0.7, 0)
        qml.RX(1.9, 2)
        qml.CNOT([0, 1])
        return qml.probs(wires=[0, 1, 2])

    return circuit


@pytest.mark.parametrize("gateset", ["qis", "native"])
def test_results_match_default_qubit_with_ionq_bit_order(emulator, gateset):
    dev = qml.device("qstore.ionq", wires=3, gateset=gateset, **FAST)
    got = asymmetric(dev)()
    want = asymmetric(qml.device("default.qubit"), shots=None)()
    np.testing.assert_allclose(got, want, atol=1e-12)  # the simulator target is exact
    payload = next(iter(emulator.jobs.values())).payload
    gates = {g["gate"] for g in payload["input"]["circuit"]}
    assert gates <= ({"gpi", "gpi2", "ms"} if gateset == "native" else {"ry", "rx", "cnot"})


def test_x_and_y_observables_on_native_gates(emulator):
    dev = qml.device("qstore.ionq", wires=2, gateset="native", **FAST)

    @qml.qnode(dev, shots=40000)
    def circuit(x):
        qml.RY(x, 0)
        qml.CNOT([0, 1])
        qml.RX(0.4, 1)
        return qml.expval(qml.X(0)), qml.expval(qml.Y(1)), qml.expval(qml.X(0) @ qml.Z(1))

    reference = qml.QNode(circuit.func, qml.device("default.qubit"))
    np.testing.assert_allclose(circuit(0.8), reference(0.8), atol=0.02)  # 40000 shots


def test_one_batch_is_one_multi_circuit_job_with_the_shots(emulator):
    dev = qml.device("qstore.ionq", wires=2, **FAST)
    tapes = [
        qml.tape.QuantumScript([qml.RX(x, 0), qml.CNOT([0, 1])], [qml.expval(qml.Z(1))], shots=300)
        for x in (0.1, 0.5, 2.0)
    ]
    results = qml.execute(tapes, dev)
    np.testing.assert_allclose(results, np.cos([0.1, 0.5, 2.0]), atol=0.2)
    [job] = emulator.jobs.values()
    assert job.payload["type"] == "ionq.multi-circuit.v1"
    assert job.payload["shots"] == 300
    assert len(job.payload["input"]["circuits"]) == 3


def test_noise_models_and_hardware_targets_sample(emulator):
    ideal = qml.device("qstore.ionq", wires=2, **FAST)
    noisy = qml.device("qstore.ionq", wires=2, noise_model="harmony", **FAST)
    qpu = qml.device("qstore.ionq", wires=2, target="qpu.aria-1", **FAST)
    ghz = [qml.Hadamard(0)] + [qml.CNOT([0, 1])] * 5  # odd number: entangled

    def leak(dev):
        @qml.qnode(dev, shots=4000)
        def circuit():
            for op in ghz:
                qml.apply(op)
            return qml.probs(wires=[0, 1])

        p = circuit()
        return p[1] + p[2]

    assert leak(ideal) == 0
    assert leak(noisy) > 0.01  # 5 two-qubit gates at 3 % error each
    jobs = list(emulator.jobs.values())
    assert jobs[1].payload["noise"] == {"model": "harmony"}
    leak(qpu)
    assert list(emulator.jobs.values())[2].payload["backend"] == "qpu.aria-1"


def test_server_errors_and_rate_limits_are_retried(emulator):
    emulator.set_faults(post_errors=[503, 429], get_errors=[502, 500])
    circuit = two_qubit_circuit(qml.device("qstore.ionq", wires=2, **FAST), shots=20000)
    assert circuit(0.4) == pytest.approx(exact(0.4), abs=0.03)
    assert len(emulator.jobs) == 1  # refused submissions created no job


def test_failed_jobs_are_resubmitted_then_give_up(emulator):
    emulator.set_faults(failed_jobs=1)
    circuit = two_qubit_circuit(qml.device("qstore.ionq", wires=2, **FAST))
    circuit(0.4)
    assert [j.status(emulator.faults) for j in emulator.jobs.values()] == ["failed", "completed"]
    emulator.set_faults(failed_jobs=3)
    with pytest.raises(IonQJobError, match="after 3 attempt"):
        circuit(0.4)


def test_client_errors_are_not_retried(emulator):
    emulator.set_faults(post_errors=[400, 400])
    circuit = two_qubit_circuit(qml.device("qstore.ionq", wires=2, **FAST))
    with pytest.raises(IonQJobError, match="HTTP 400"):
        circuit(0.4)
    assert emulator.faults.post_errors == [400]  # one attempt only


def test_job_level_timeout(emulator):
    emulator.set_faults(hang=True)
    dev = qml.device("qstore.ionq", wires=2, job_timeout=0.5, **FAST)
    with pytest.raises(IonQTimeoutError, match=r"not complete after 0\.5 s"):
        two_qubit_circuit(dev)(0.4)


def test_api_key_comes_from_the_environment_and_is_never_shown(emulator, caplog):
    emulator.set_faults(post_errors=[503, 503, 503])
    dev = qml.device("qstore.ionq", wires=2, **FAST)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IonQJobError) as info:
        two_qubit_circuit(dev)(0.4)
    shown = repr(dev) + str(info.value) + repr(info.value) + caplog.text
    assert API_KEY not in shown
    assert "retrying" in caplog.text


def test_missing_api_key_is_a_clear_error(emulator, monkeypatch):
    monkeypatch.delenv("IONQ_API_KEY")
    with pytest.raises(ValueError, match="PENNYLANE_IONQ_API_KEY or IONQ_API_KEY"):
        qml.device("qstore.ionq", wires=2)


def test_emulator_speaks_the_rest_of_the_api(emulator):
    headers = {"Authorization": f"apiKey {API_KEY}"}
    root = f"{emulator.url}/v0.4"
    assert requests.get(f"{root}/backends").status_code == 401
    emulator.set_faults(queue_seconds={"qpu.aria-1": 90}, status={"qpu.forte-1": "offline"})
    backends = {b["backend"]: b for b in requests.get(f"{root}/backends", headers=headers).json()}
    assert backends["qpu.aria-1"]["average_queue_time"] == 90000
    assert backends["qpu.forte-1"]["status"] == "offline"
    query = {"backend": "qpu.aria-1", "shots": 1000, "1q_gates": 10, "2q_gates": 5}
    estimate = requests.get(f"{root}/jobs/estimate", params=query, headers=headers).json()
    assert estimate["estimated_cost"] == pytest.approx(12.4166)  # below the minimum
    query["shots"] = 100000
    estimate = requests.get(f"{root}/jobs/estimate", params=query, headers=headers).json()
    assert estimate["estimated_cost"] == pytest.approx(100000 * (10 * 0.00022 + 5 * 0.000975))
    bad = {"type": "ionq.circuit.v1", "backend": "simulator", "shots": 10}
    bad["input"] = {"qubits": 1, "circuit": [{"gate": "warp", "target": 0}]}
    answer = requests.post(f"{root}/jobs", json=bad, headers=headers)
    assert answer.status_code == 400
    assert "unsupported gate 'warp'" in answer.json()["error"]


def test_rate_limits_and_the_control_endpoint(emulator):
    headers = {"Authorization": f"apiKey {API_KEY}"}
    answer = requests.post(f"{emulator.url}/_emulator/faults", json={"rate_limit": 2})
    assert answer.json()["rate_limit"] == 2
    codes = [
        requests.get(f"{emulator.url}/v0.4/backends", headers=headers).status_code for _ in range(4)
    ]
    assert codes[:2] == [200, 200] and 429 in codes[2:]
    bad = requests.post(f"{emulator.url}/_emulator/faults", json={"meteor": True})
    assert bad.status_code == 400 and "unknown fault 'meteor'" in bad.json()["error"]
