"""IonQ through the router, worded for the user: offline says offline, analytic circuits
say they need shots, a budget refusal is not a backend failure, and results have the
same types whichever backend ran them (the offline IonQ emulator on loopback)."""

import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, exact, ionq, two_qubit_circuit

import qstore_pl
from qstore_pl.exceptions import BackendExecutionError, UnsupportedCircuitError

emulator = pytest.fixture(emulator_server, name="emulator")


def test_an_offline_target_says_offline_and_what_to_do(emulator, tmp_path):
    emulator.set_faults(status={"simulator": "offline"})
    dev = qml.device("qstore.router", wires=2, router_config=config(tmp_path, ionq("ionq")))
    with pytest.raises(UnsupportedCircuitError) as info:
        two_qubit_circuit(dev, shots=100)(0.3)
    message = str(info.value)
    assert "ionq: IonQ reports offline" in message
    assert "To run it, wait until ionq can take jobs again, or add a fallback" in message
    assert "reduce the circuit" not in message.lower()
    assert not emulator.jobs  # nothing submitted
    assert dev.cost_report().total == 0.0


def test_an_analytic_circuit_on_ionq_only_says_it_needs_shots(emulator, tmp_path):
    dev = qml.device("qstore.router", wires=2, router_config=config(tmp_path, ionq("ionq")))
    with pytest.raises(UnsupportedCircuitError) as info:
        two_qubit_circuit(dev, shots=None)(0.3)
    message = str(info.value)
    assert "needs shots (no analytic mode)" in message
    assert "give the QNode shots" in message and "qml.set_shots" in message
    assert "or add a simulator for analytic circuits" in message
    assert "reduce the circuit" not in message.lower()
    assert not emulator.jobs


def test_an_analytic_circuit_on_the_chain_names_the_backend_that_could_not(emulator, tmp_path):
    cfg = config(
        tmp_path,
        ionq("ionq_simulator", use_for="training"),
        {"name": "local", "type": "default.qubit", "use_for": "development"},
        fallback_chain=["ionq_simulator", "local"],
    )
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    analytic = two_qubit_circuit(dev, shots=None)
    assert analytic(0.2) == pytest.approx(exact(0.2))
    [run] = dev.routing_report().recent
    assert run.backend == "local"
    assert run.reason.startswith("no backend for training can run this (ionq_simulator: ")
    assert "needs shots" in run.reason and "give the QNode shots" in run.reason
    assert "add a simulator" not in run.reason  # one ran it
    assert "no backend has use_for" not in run.reason
    assert not emulator.jobs


def test_refused_everywhere_says_so(emulator, tmp_path):
    cfg = config(
        tmp_path,
        ionq("hardware", "qpu.aria-1", use_for="validation"),
        max_cost_per_batch=1.0,
        on_budget_exceeded="fallback",
    )
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    with qstore_pl.purpose("validation"), pytest.raises(BackendExecutionError) as info:
        two_qubit_circuit(dev, shots=700)(0.3)
    assert "failed or would pass a spending limit" in str(info.value)
    assert "max_cost_per_batch" in str(info.value)
    assert not emulator.jobs and dev.cost_report().total == 0.0


# ------------------------------------------------------------------- return types
def _kinds(result):
    """Container types, dtypes and shapes of a result, recursively."""
    if isinstance(result, (tuple, list)):
        return type(result).__name__, tuple(_kinds(r) for r in result)
    return type(result).__name__, np.asarray(result).dtype.name, np.shape(result)


def _flat(result):
    if isinstance(result, (tuple, list)):
        return [v for r in result for v in _flat(r)]
    return [np.asarray(result)]


def _measurements(x):
    qml.RX(x, 0)
    qml.CNOT([0, 1])
    return qml.expval(qml.Z(0)), qml.probs(wires=[1]), qml.var(qml.X(1))


def _expval_list(x):
    qml.RX(x, 0)
    qml.CNOT([0, 1])
    return [qml.expval(qml.Z(0)), qml.expval(qml.Z(0) @ qml.Z(1))]


def _probs(x):
    qml.RY(x, 0)
    qml.CNOT([0, 1])
    return qml.probs(wires=[0, 1])


LOCAL_BACKENDS = ["qstore.batched", "lightning.qubit", "qstore.qsim", "default.qubit"]
QFUNCS = [_measurements, _expval_list, _probs]


@pytest.mark.parametrize("shots", [None, 200])
@pytest.mark.parametrize("x", [0.4, np.array([0.1, 0.7, 1.3])], ids=["single", "broadcast"])
@pytest.mark.parametrize("qfunc", QFUNCS, ids=lambda f: f.__name__)
def test_local_backends_return_what_default_qubit_returns(qfunc, x, shots):
    want = qml.QNode(qfunc, qml.device("default.qubit", wires=2), shots=shots)(x)
    for backend in LOCAL_BACKENDS:
        dev = qml.device("qstore.router", wires=2, router_config={"backends": [backend]})
        got = qml.QNode(qfunc, dev, shots=shots)(x)
        assert _kinds(got) == _kinds(want), backend
        assert dev.routing_report().recent[-1].backend == backend
        if shots is None:
            for g, w in zip(_flat(got), _flat(want), strict=True):
                assert np.allclose(g, w, atol=1e-5), backend


def _commuting(x):
    qml.RX(x, 0)
    qml.CNOT([0, 1])
    return qml.expval(qml.Z(0)), qml.probs(wires=[1]), qml.var(qml.Z(1))


# IonQ measures in one basis per job: its circuits' measurements commute
@pytest.mark.parametrize("qfunc", [_commuting, _expval_list, _probs], ids=lambda f: f.__name__)
def test_ionq_returns_what_default_qubit_returns(emulator, tmp_path, qfunc):
    want = qml.QNode(qfunc, qml.device("default.qubit", wires=2), shots=300)(0.4)
    dev = qml.device("qstore.router", wires=2, router_config=config(tmp_path, ionq("ionq")))
    got = qml.QNode(qfunc, dev, shots=300)(0.4)
    assert _kinds(got) == _kinds(want)
    assert dev.routing_report().recent[-1].backend == "ionq"
    assert len(emulator.jobs) == 1
