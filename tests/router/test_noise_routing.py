"""Noisy circuits through the router: channels and ``qml.add_noise`` models run on a
density-matrix backend and give default.mixed's values and gradients in every
interface; noiseless backends are ineligible, and a router without a noisy backend
says what to add."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from noise_support import P0, X0, values_and_jacobian
from pennylane import numpy as pnp

from qstore_pl.exceptions import UnsupportedCircuitError


def noisy(x, p):
    """Depolarizing (trainable strength), amplitude damping and bit flip, between gates."""
    qml.RX(x[0], 0)
    qml.RY(x[1], 1)
    qml.CNOT([0, 1])
    qml.DepolarizingChannel(p, 0)
    qml.AmplitudeDamping(0.2, 1)
    qml.BitFlip(0.05, 0)
    qml.RZ(x[2], 1)
    qml.RX(0.4, 1)
    return qml.expval(qml.Z(1) @ qml.X(0)), qml.probs(wires=[0, 1]), qml.var(qml.Y(1))


@pytest.fixture(scope="module")
def router():
    return qml.device("qstore.router", wires=2)


@pytest.fixture(scope="module")
def mixed():
    return qml.device("default.mixed", wires=2)


@pytest.mark.parametrize("interface", ["autograd", "torch", "jax", "tf"])
@pytest.mark.parametrize("diff_method", ["best", "backprop", "parameter-shift"])
def test_values_and_gradients_equal_default_mixed(router, mixed, interface, diff_method):
    got = values_and_jacobian(noisy, router, diff_method, interface)
    want = values_and_jacobian(noisy, mixed, diff_method, interface)
    # 9 values (expval, 4 probs, var) and their derivatives in 3 angles and p
    assert got.shape == want.shape == (6 + 6 * 4,)
    np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)
    assert any(abs(want[6 + 18 :]) > 1e-3)  # the channel strength's derivatives are there


def test_the_noisy_circuit_ran_on_the_density_matrix_backend(router):
    router.reset_routing_report()
    qml.QNode(noisy, router)(X0, P0)
    report = router.routing_report()
    assert list(report.totals) == ["default.mixed"]


def test_adjoint_is_refused_for_a_trainable_channel_as_on_default_mixed(router, mixed):
    x, p = pnp.array(X0, requires_grad=True), pnp.array(P0, requires_grad=True)
    for device in (router, mixed):
        with pytest.raises(qml.exceptions.QuantumFunctionError, match="does not support adjoint"):
            qnode = qml.QNode(noisy, device, diff_method="adjoint")
            qml.jacobian(lambda x, p, qnode=qnode: qml.math.hstack(qnode(x, p)))(x, p)


def test_an_add_noise_model_runs_and_differentiates_as_on_default_mixed(router, mixed):
    condition = qml.noise.op_eq(qml.RX) | qml.noise.op_eq(qml.CNOT)
    model = qml.NoiseModel({condition: qml.noise.partial_wires(qml.DepolarizingChannel, 0.05)})

    def circuit(x):
        qml.RX(x[0], 0)
        qml.RY(x[1], 1)
        qml.CNOT([0, 1])
        qml.RX(x[2], 1)
        return qml.expval(qml.Z(1)), qml.probs(wires=[0])

    x = pnp.array(X0, requires_grad=True)
    results = []
    for device in (router, mixed):
        qnode = qml.add_noise(qml.QNode(circuit, device), model)

        def stacked(x, qnode=qnode):
            return qml.math.hstack(qnode(x))

        results.append((stacked(x), qml.jacobian(stacked)(x)))
    (got, got_jac), (want, want_jac) = results
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(got_jac, want_jac, atol=1e-12)
    noiseless = qml.QNode(circuit, qml.device("default.qubit"))(x)
    assert abs(got[0] - noiseless[0]) > 1e-3  # the model's noise is in the values


def test_sampled_noisy_values_agree_with_the_exact_ones_within_their_error(router, mixed):
    shots = 20_000
    sampled = qml.set_shots(qml.QNode(noisy, router), shots=shots)(X0, P0)
    exact = qml.QNode(noisy, mixed)(X0, P0)
    expval, probs = float(sampled[0]), np.asarray(sampled[1])
    sigma = np.sqrt((1 - float(exact[0]) ** 2) / shots)
    assert abs(expval - float(exact[0])) < 5 * sigma
    np.testing.assert_allclose(probs, exact[1], atol=5 * np.sqrt(0.25 / shots))


def test_noiseless_circuits_stay_on_state_vector_backends(router):
    qnode = qml.QNode(lambda x: (qml.RX(x, 0), qml.expval(qml.Z(0)))[1], router)
    explanation = router.explain(qnode, 0.3)
    decision = explanation.decisions[0]
    assert decision.backend != "default.mixed"
    mixed = next(c for c in decision.candidates if c.backend == "default.mixed")
    assert mixed.reasons == ("a noise simulator, kept for circuits with noise",)


def test_default_mixed_named_explicitly_runs_pure_circuits_too():
    dev = qml.device("qstore.router", wires=2, backends=["default.mixed"])
    qnode = qml.QNode(lambda x: (qml.RX(x, 0), qml.expval(qml.Z(0)))[1], dev)
    assert qnode(0.3) == pytest.approx(np.cos(0.3), abs=1e-12)


def test_without_a_noisy_backend_the_refusal_names_the_fix():
    dev = qml.device("qstore.router", wires=2, backends=["lightning.qubit", "default.qubit"])
    with pytest.raises(UnsupportedCircuitError) as err:
        qml.QNode(noisy, dev)(X0, P0)
    message = str(err.value)
    assert "lightning.qubit: noiseless" in message
    assert "cannot apply ['AmplitudeDamping', 'BitFlip', 'DepolarizingChannel']" in message
    assert "add 'default.mixed'" in message


def test_a_noisy_state_is_not_passed_off_as_a_state_vector(router):
    def prepare():
        qml.Hadamard(0)
        qml.DepolarizingChannel(0.1, 0)

    def state():
        prepare()
        return qml.state()

    def rho():
        prepare()
        return qml.density_matrix([0])

    with pytest.raises(UnsupportedCircuitError, match="analytic measurements"):
        qml.QNode(state, router)()
    got = qml.QNode(rho, router)()
    want = qml.QNode(rho, qml.device("default.mixed"))()
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[0, 1] == pytest.approx(0.5 * (1 - 4 * 0.1 / 3))
