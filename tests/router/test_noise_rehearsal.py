"""Hardware rehearsals: a density-matrix backend with ``noise_model: aria-1`` runs the
natively compiled circuits of the QPU job with the Aria gate errors, beside the priced
IonQ backend in ``explain`` and ``estimate_cost``, and costs nothing."""

from __future__ import annotations

import math

import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, ionq

import qstore_pl
from qstore_pl.circuits.ionq_native import compile_native, gpi2_matrix, gpi_matrix, ms_matrix
from qstore_pl.exceptions import ConfigError, UnsupportedCircuitError

emulator = pytest.fixture(emulator_server, name="emulator")

REHEARSAL = {
    "name": "aria-rehearsal",
    "type": "default.mixed",
    "noise_model": "aria-1",
    "use_for": "rehearsal",
}
# IonQ Aria's public error rates, written out: 1q 5e-4, 2q 6e-3 (average infidelity)
P1 = 1.5 * 5e-4
P2 = 1 - math.sqrt(1 - 1.25 * 6e-3)


def _gates(x):
    qml.RX(x, 0)
    qml.CNOT([0, 1])
    qml.RY(0.3, 1)
    qml.CNOT([1, 2])
    qml.RY(0.5, 2)


def _circuit(x):
    _gates(x)
    return qml.expval(qml.Z(0) @ qml.Z(2)), qml.probs(wires=[0, 1])


def _router(tmp_path):
    cfg = config(
        tmp_path,
        ionq("aria", "qpu.aria-1", use_for="validation", options={"gateset": "native"}),
        REHEARSAL,
        {"name": "local", "type": "auto", "use_for": ["development", "training"]},
    )
    return qml.device("qstore.router", wires=3, router_config=cfg)


def _aria_by_hand(x):
    """default.mixed on the natively compiled circuit, a channel after every gate."""
    native = compile_native(qml.tape.make_qscript(_gates)(x).operations)
    ops = []
    for op in native.operations:
        phases = [float(p) for p in op.parameters]
        if op.name == "MS":
            ops.append(qml.QubitUnitary(ms_matrix(*phases), wires=op.wires))
            ops += [qml.DepolarizingChannel(P2, wires=w) for w in op.wires]
        else:
            matrix = (gpi_matrix if op.name == "GPI" else gpi2_matrix)(phases[0])
            ops += [qml.QubitUnitary(matrix, op.wires), qml.DepolarizingChannel(P1, op.wires)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(2)), qml.probs(wires=[0, 1])])
    return qml.device("default.mixed", wires=3).execute(tape)


def test_a_rehearsal_equals_default_mixed_on_the_native_circuit_with_aria_noise(emulator, tmp_path):
    dev = _router(tmp_path)
    qnode = qml.QNode(_circuit, dev)
    with qstore_pl.purpose("rehearsal"):
        got = qnode(0.4)
    want = _aria_by_hand(0.4)
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], atol=1e-12)
    ideal = qml.QNode(_circuit, qml.device("default.qubit"))(0.4)
    assert abs(got[0] - ideal[0]) > 1e-3  # the noise shows
    assert abs(got[0] - ideal[0]) < 0.05  # and is Aria's, not more


def test_a_rehearsal_costs_nothing_and_is_shown_beside_the_qpu(emulator, tmp_path):
    dev = _router(tmp_path)
    qnode = qml.set_shots(qml.QNode(_circuit, dev), shots=500)
    with qstore_pl.purpose("rehearsal"):
        explanation = dev.explain(qnode, 0.4)
        qnode(0.4)
    decision = explanation.decisions[0]
    assert decision.backend == "aria-rehearsal"
    costs = {c.backend: c.cost for c in decision.candidates}
    assert costs["aria-rehearsal"] == 0.0
    assert costs["aria"] > 1.0  # the QPU's price, listed beside it
    estimate = {line.backend: line for line in dev.estimate_cost(qnode, 0.4).lines}
    assert estimate["aria-rehearsal"].cost() == 0.0
    assert estimate["aria"].cost() > 1.0
    assert estimate["aria-rehearsal"].native_gates == estimate["aria"].native_gates
    assert dev.routing_report().totals["aria-rehearsal"].circuits == 1
    rehearsed = dev.cost_report()  # the ledger holds the rehearsal as a 0 USD entry
    assert rehearsed.total == 0.0
    assert rehearsed.by_backend == {"aria-rehearsal": 0.0}
    assert (rehearsed.executions["aria-rehearsal"], rehearsed.shots["aria-rehearsal"]) == (1, 500)
    assert rehearsed.rehearsals == {"aria-rehearsal": "aria-1"}
    assert rehearsed.unreconciled == 0.0  # ran here: nothing to check with IonQ
    with qstore_pl.purpose("validation"):
        qnode(0.4)
    report = dev.cost_report()
    assert report.total == pytest.approx(costs["aria"])
    assert report.by_purpose == {"rehearsal": 0.0, "validation": pytest.approx(costs["aria"])}
    lines = {line.split()[0]: line for line in str(report).splitlines()[2:4]}
    assert lines["aria"].split()[1:4] == [f"{costs['aria']:.2f}", "1", "500"]
    assert lines["aria-rehearsal"].split()[1:4] == ["0.00", "1", "500"]
    assert lines["aria-rehearsal"].endswith("rehearsal (aria-1 noise)")


def test_a_rehearsal_of_a_broadcast_batch_rehearses_each_circuit(emulator, tmp_path):
    dev = _router(tmp_path)
    xs = np.array([0.1, 0.4, 1.2])
    with qstore_pl.purpose("rehearsal"):
        got = qml.QNode(_circuit, dev)(xs)
    np.testing.assert_allclose(got[0], [_aria_by_hand(x)[0] for x in xs], atol=1e-12)


def test_a_rehearsal_refuses_what_hardware_cannot_measure_or_already_noisy_circuits(
    emulator, tmp_path
):
    dev = _router(tmp_path)

    def noisy(x):
        _gates(x)
        qml.DepolarizingChannel(0.1, 0)
        return qml.expval(qml.Z(0))

    def state(x):
        _gates(x)
        return qml.state()

    with qstore_pl.purpose("rehearsal"):
        with pytest.raises(UnsupportedCircuitError, match="aria-rehearsal: noiseless"):
            qml.QNode(noisy, dev)(0.4)
        with pytest.raises(UnsupportedCircuitError, match="state"):
            qml.QNode(state, dev)(0.4)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"type": "lightning.qubit", "noise_model": "aria-1"}, "Use type 'default.mixed'"),
        ({"type": "default.mixed", "noise_model": "aria-9"}, "known: ideal, harmony, aria-1"),
        ({"type": "default.mixed", "noise_model": 3}, "a name such as 'aria-1'"),
    ],
)
def test_bad_noise_models_are_refused(entry, match):
    with pytest.raises(ConfigError, match=match):
        qml.device("qstore.router", wires=2, backends=[{"name": "r", **entry}])


def test_the_emulator_and_the_rehearsal_read_the_same_error_rates():
    from qstore_pl.devices.ionq import simulate
    from qstore_pl.devices.ionq.noise_models import HARDWARE_NOISE

    assert simulate.NOISE_MODELS is HARDWARE_NOISE
    aria = HARDWARE_NOISE["aria-1"]
    assert (aria.one_qubit, aria.two_qubit) == (5e-4, 6e-3)
    assert aria.depolarizing_1q() == pytest.approx(P1)
    assert aria.depolarizing_2q() == pytest.approx(P2)
