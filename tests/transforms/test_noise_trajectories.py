"""qstore_pl.trajectories: noisy circuits as batches of pure trajectories on the router.
Values and gradients agree with default.mixed within the stated statistical error."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

import qstore_pl

N = 3
REPETITIONS = 3000
# every value is in [-1, 1]: the standard error of a mean of R of them is <= 1/sqrt(R)
FIVE_SIGMA = 5 / np.sqrt(REPETITIONS)


def make_circuit(noisy: bool = True):
    def circuit(inputs, weights):
        for i in range(N):
            qml.RX(inputs[..., i], wires=i)
        for layer in range(2):
            for i in range(N):
                qml.RY(weights[layer, i], wires=i)
            for i in range(N):
                qml.CNOT([i, (i + 1) % N])
            for i in range(N):
                if noisy:
                    qml.DepolarizingChannel(0.1, wires=i)
        if noisy:
            qml.BitFlip(0.2, wires=0)
            qml.PhaseFlip(0.1, wires=1)
        return qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Z(2)), qml.probs(wires=[0])

    return circuit


circuit = make_circuit()


RNG = np.random.default_rng(0)
INPUTS = RNG.uniform(0, np.pi, (4, N))
WEIGHTS = RNG.uniform(-1, 1, (2, N))


@pytest.fixture(scope="module")
def router():
    return qml.device("qstore.router", wires=N)


def _stacked(qnode, inputs, weights):
    return qml.math.hstack(
        [qml.math.reshape(r, (inputs.shape[0], -1)) for r in qnode(inputs, weights)]
    )


def test_values_agree_with_default_mixed_within_the_statistical_error(router):
    exact = _stacked(qml.QNode(circuit, qml.device("default.mixed", wires=N)), INPUTS, WEIGHTS)
    noisy = qstore_pl.trajectories(qml.QNode(circuit, router), repetitions=REPETITIONS, seed=1)
    got = _stacked(noisy, INPUTS, WEIGHTS)
    assert got.shape == exact.shape == (4, 4)
    np.testing.assert_allclose(got, exact, atol=FIVE_SIGMA)
    pure = _stacked(qml.QNode(make_circuit(False), qml.device("default.qubit")), INPUTS, WEIGHTS)
    assert np.abs(exact - pure).max() > 4 * FIVE_SIGMA  # the noise is well above the error


def test_gradients_agree_with_default_mixed_within_the_statistical_error(router):
    def loss(qnode):
        return lambda w: qml.math.sum(_stacked(qnode, INPUTS, w)[:, :2])

    weights = pnp.array(WEIGHTS, requires_grad=True)
    exact = qml.grad(loss(qml.QNode(circuit, qml.device("default.mixed", wires=N))))(weights)
    noisy = qstore_pl.trajectories(qml.QNode(circuit, router), repetitions=REPETITIONS, seed=2)
    got = qml.grad(loss(noisy))(weights)
    # a sum of 8 expectation values: its derivative's error is at most 8/sqrt(R)
    np.testing.assert_allclose(got, exact, atol=8 * FIVE_SIGMA)
    assert "qstore.batched" in " ".join(router.routing_report().totals)


def test_torch_gradients_flow_through_the_mean(router):
    import torch

    noisy = qstore_pl.trajectories(
        qml.QNode(circuit, router, interface="torch"), repetitions=REPETITIONS, seed=3
    )
    weights = torch.tensor(WEIGHTS, requires_grad=True)
    values = noisy(torch.tensor(INPUTS), weights)
    torch.sum(values[0] + values[1]).backward()
    exact_qnode = qml.QNode(circuit, qml.device("default.mixed", wires=N))
    exact = qml.grad(lambda w: qml.math.sum(exact_qnode(INPUTS, w)[0] + exact_qnode(INPUTS, w)[1]))(
        pnp.array(WEIGHTS, requires_grad=True)
    )
    np.testing.assert_allclose(weights.grad.numpy(), exact, atol=8 * FIVE_SIGMA)


def test_a_fixed_seed_gives_the_same_trajectories_and_none_new_ones(router):
    fixed = qstore_pl.trajectories(qml.QNode(circuit, router), repetitions=50, seed=7)
    fresh = qstore_pl.trajectories(qml.QNode(circuit, router), repetitions=50)
    np.testing.assert_array_equal(
        _stacked(fixed, INPUTS, WEIGHTS), _stacked(fixed, INPUTS, WEIGHTS)
    )
    assert not np.array_equal(_stacked(fresh, INPUTS, WEIGHTS), _stacked(fresh, INPUTS, WEIGHTS))


def test_what_trajectories_cannot_estimate_is_refused(router):
    def damped(x):
        qml.RX(x, 0)
        qml.AmplitudeDamping(0.1, 0)
        return qml.expval(qml.Z(0))

    def variance(x):
        qml.RX(x, 0)
        qml.DepolarizingChannel(0.1, 0)
        return qml.var(qml.Z(0))

    def trained_strength(p):
        qml.RX(0.3, 0)
        qml.DepolarizingChannel(p, 0)
        return qml.expval(qml.Z(0))

    with pytest.raises(ValueError, match=r"not AmplitudeDamping.*default\.mixed"):
        qstore_pl.trajectories(qml.QNode(damped, router))(0.3)
    with pytest.raises(ValueError, match="not VarianceMP"):
        qstore_pl.trajectories(qml.QNode(variance, router))(0.3)
    with pytest.raises(ValueError, match="trainable"):
        qml.grad(qstore_pl.trajectories(qml.QNode(trained_strength, router)))(
            pnp.array(0.1, requires_grad=True)
        )
    with pytest.raises(ValueError, match="positive integer"):
        qstore_pl.trajectories(qml.QNode(variance, router), repetitions=0)(0.3)


def test_identical_trajectories_run_once_and_count_as_often_as_drawn():
    """RX(x) then a bit flip: a trajectory gives cos(x) (no flip) or -cos(x), so the mean
    over R is cos(x) (1 - 2k/R) for the k flips drawn, whatever is simulated; only the
    two distinct trajectories of each input run."""
    router = qml.device("qstore.router", wires=1)

    def flipped(x):
        qml.RX(x, 0)
        qml.BitFlip(0.3, 0)
        return qml.expval(qml.Z(0))

    xs = np.array([0.2, 0.9, 1.3])
    repetitions = 1000
    values = qstore_pl.trajectories(qml.QNode(flipped, router), repetitions=repetitions, seed=4)(xs)
    flips = (1 - np.asarray(values) / np.cos(xs)) * repetitions / 2
    np.testing.assert_allclose(flips, np.round(flips), atol=1e-3)  # whole trajectories
    assert np.all(np.abs(flips / repetitions - 0.3) < 5 * np.sqrt(0.3 * 0.7 / repetitions))
    ran = sum(total.circuits for total in router.routing_report().totals.values())
    assert ran == 2 * len(xs)
