"""Noisy circuits routed to Qiskit Aer (``qstore.aer``): default.mixed's values and
parameter-shift gradients in autograd, torch, JAX and TensorFlow, chosen by ``auto`` where its time
model wins, and trajectories for circuits with shots only."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest

pytest.importorskip("qiskit_aer", reason="the qiskit extra is not installed")

from noise_support import P0, X0, values_and_jacobian

from qstore_pl.exceptions import UnsupportedCircuitError


def noisy(x, p):
    """Depolarizing (trainable strength), amplitude damping and bit flip, between gates."""
    qml.RX(x[0], 0)
    qml.RY(x[1], 1)
    qml.CNOT([0, 1])
    qml.DepolarizingChannel(p, 0)
    qml.AmplitudeDamping(0.2, 1)
    qml.BitFlip(0.05, 0)
    qml.CRZ(x[2], [0, 1])
    qml.RX(0.4, 1)
    return qml.expval(qml.Z(1) @ qml.X(0)), qml.probs(wires=[0, 1])


@pytest.fixture(scope="module")
def aer_router():
    return qml.device("qstore.router", wires=2, backends=["qstore.aer"])


@pytest.mark.parametrize("interface", ["autograd", "torch", "jax", "tf"])
@pytest.mark.parametrize("diff_method", ["best", "parameter-shift"])
def test_values_and_gradients_equal_default_mixed(aer_router, interface, diff_method):
    aer_router.reset_routing_report()
    got = values_and_jacobian(noisy, aer_router, diff_method, interface)
    mixed = qml.device("default.mixed", wires=2)
    # default.mixed under torch is itself 6e-10 off its autograd values (single-precision
    # steps inside); its autograd values are the double-precision reference
    want = values_and_jacobian(noisy, mixed, "backprop", "autograd")
    assert got.shape == want.shape == (5 + 5 * 4,)
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
    assert any(abs(want[5 + 15 :]) > 1e-3)  # the channel strength's derivatives are there
    assert list(aer_router.routing_report().totals) == ["qstore.aer"]


def wide_noisy(x):
    """Seven qubits: a density matrix of 4**7 entries, where Aer's C++ wins."""
    for w in range(7):
        qml.RY(x * (w + 1), w)
    for w in range(6):
        qml.CNOT([w, w + 1])
        qml.DepolarizingChannel(0.05, w + 1)
    return qml.expval(qml.Z(6)), qml.probs(wires=[0, 3])


def test_auto_routes_a_wide_exact_noisy_circuit_to_aer_with_default_mixed_values():
    """With parameter shift (or no gradient); ``"best"`` backpropagates through
    default.mixed, as default.mixed's ``"best"`` does."""
    router = qml.device("qstore.router", wires=7)
    qnode = qml.QNode(wide_noisy, router, diff_method="parameter-shift")
    assert router.explain(qnode, 0.4).decisions[0].backend == "qstore.aer"
    got = qnode(0.4)
    want = qml.QNode(wide_noisy, qml.device("default.mixed", wires=7))(0.4)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-12, rtol=0)


def twelve_qubits(x):
    """<Z_0> = (1 - 4p/3) cos x exactly; eleven more qubits make a density matrix of
    4**12 entries, against 2**12 per trajectory."""
    qml.RX(x, 0)
    qml.DepolarizingChannel(0.3, 0)
    for w in range(1, 12):
        qml.Hadamard(w)
        qml.CNOT([w - 1, w]) if w > 1 else None
        qml.PhaseFlip(0.1, w)
    return qml.expval(qml.Z(0))


def test_auto_samples_a_wide_noisy_circuit_with_shots_by_trajectories():
    router = qml.device("qstore.router", wires=12, seed=5)
    shots = 4000
    qnode = qml.set_shots(qml.QNode(twelve_qubits, router), shots=shots)
    assert router.explain(qnode, 0.6).decisions[0].backend == "qstore.aer.trajectories"
    exact = (1 - 4 * 0.3 / 3) * np.cos(0.6)
    assert abs(qnode(0.6) - exact) < 5 / np.sqrt(shots)


def test_trajectories_alone_refuse_an_analytic_circuit_and_say_why():
    trajectories = {"name": "traj", "type": "qstore.aer", "options": {"method": "statevector"}}
    router = qml.device("qstore.router", wires=2, router_config={"backends": [trajectories]})
    with pytest.raises(UnsupportedCircuitError, match=r"traj: needs shots \(no analytic mode\)"):
        qml.QNode(noisy, router)(X0, P0)
    sampled = qml.set_shots(qml.QNode(noisy, router), shots=2000)(X0, P0)
    exact = qml.QNode(noisy, qml.device("default.mixed", wires=2))(X0, P0)
    assert abs(sampled[0] - exact[0]) < 5 / np.sqrt(2000)


def test_a_rehearsal_on_aer_equals_the_rehearsal_on_default_mixed():
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        qml.RY(0.3, 1)
        return qml.expval(qml.Z(0) @ qml.Z(1)), qml.probs(wires=[1])

    values = []
    for kind in ("qstore.aer", "default.mixed"):
        entry = {"name": "rehearsal", "type": kind, "noise_model": "aria-1"}
        router = qml.device("qstore.router", wires=2, backends=[entry])
        values.append(qml.QNode(circuit, router)(0.4))
    (aer_z, aer_p), (mixed_z, mixed_p) = values
    np.testing.assert_allclose([aer_z, *aer_p], [mixed_z, *mixed_p], atol=1e-12, rtol=0)
    assert abs(aer_z - np.cos(0.4)) > 1e-4  # Aria's noise is in it
