"""Finite shots on the compiled path: sampled outputs, parameter-shift gradients.

A QNode with shots on ``qstore.router`` runs compiled: outputs are estimated from
samples of the engine's final states and gradients follow PennyLane's parameter-shift
rule, each shifted circuit sampled with the same shots. The exact values come from
default.qubit; tolerances are several standard errors of the estimates.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch
from test_compiled_torch import SHAPES, N, layer, reupload, several_measurements, value_and_grads

from qstore_pl.layers.compiled import CompiledPathWarning
from qstore_pl.torch import TorchLayer

#: Multinomial draws cost the same for any shots: a million keeps the errors small.
SHOTS = 1_000_000


def router(seed=0, **kwargs):
    return qml.device("qstore.router", wires=N, precision="double", seed=seed, **kwargs)


def shot_layer(fn, device, shots=SHOTS, **qnode_kwargs):
    torch.manual_seed(0)
    qnode = qml.set_shots(qml.QNode(fn, device, interface="torch", **qnode_kwargs), shots=shots)
    return TorchLayer(qnode, SHAPES)


def inputs(rows=4, seed=0):
    return torch.tensor(np.random.default_rng(seed).uniform(0, np.pi, (rows, N)))


@pytest.mark.parametrize("fn", [several_measurements, reupload])
def test_sampled_values_and_shift_gradients_match_the_exact_ones(fn):
    """Pauli words in two bases, a Hermitian, probabilities; inputs and weights in
    products and sums (reupload). With 10^6 shots an estimate's standard error is at
    most 0.001 (0.002 for the Hermitian of eigenvalues 1 and -2)."""
    x = inputs()
    device = router()
    sampled = shot_layer(fn, device)
    got = value_and_grads(sampled, x)
    want = value_and_grads(layer(fn, qml.device("default.qubit", wires=N)), x)
    assert sampled._compiled_host.last_path == "compiled"
    values, input_grads, weight_grads = got
    assert not torch.allclose(values, want[0], atol=1e-7, rtol=0)  # sampled, not exact
    torch.testing.assert_close(values, want[0], atol=0.012, rtol=0)
    torch.testing.assert_close(input_grads, want[1], atol=0.05, rtol=0)
    torch.testing.assert_close(weight_grads, want[2], atol=0.04, rtol=0)
    (execute, vjp) = device.routing_report().recent
    assert execute.path == vjp.path == "compiled"
    assert vjp.derivative_method == "parameter-shift"
    # every shifted circuit ran: two per trainable angle and sample (the gates here
    # have one frequency), beside the forward pass's four circuits
    assert execute.circuits == 4 and vjp.circuits > 4 and vjp.circuits % 8 == 0


def test_estimates_spread_as_the_shots_say():
    """Repeated estimates of <Z> from 100 shots vary by (1 - <Z>^2) / 100, and the
    probabilities by p (1 - p) / 100: the estimates are sampled with the QNode's shots,
    not more and not fewer."""

    def circuit(inputs, weights):
        qml.RY(inputs[..., 0], wires=0)
        qml.RY(weights[0, 0, 0], wires=1)
        return [qml.expval(qml.Z(0)), qml.probs(wires=[1])]

    torch.manual_seed(0)
    qnode = qml.set_shots(qml.QNode(circuit, router(), interface="torch"), shots=100)
    sampled = TorchLayer(qnode, SHAPES)
    x = torch.full((4000, N), 1.1, dtype=torch.float64)
    with torch.no_grad():
        sampled.qnode_weights["weights"].fill_(1.2)
        out = sampled(x).numpy()
    z, p0 = np.cos(1.1), np.cos(0.6) ** 2
    assert out[:, 0].mean() == pytest.approx(z, abs=5 * np.sqrt((1 - z**2) / 100 / 4000))
    assert out[:, 0].var() == pytest.approx((1 - z**2) / 100, rel=0.1)
    assert out[:, 1].var() == pytest.approx(p0 * (1 - p0) / 100, rel=0.1)
    assert set(np.round(out[:, 1] * 100, 9)) <= set(range(101))  # counts of 100 shots


def test_a_seeded_router_samples_the_same_and_the_qnode_path_agrees_within_errors():
    x = inputs(seed=3)
    first = value_and_grads(shot_layer(reupload, router(seed=5), shots=20_000), x)
    again = value_and_grads(shot_layer(reupload, router(seed=5), shots=20_000), x)
    other = value_and_grads(shot_layer(reupload, router(seed=6), shots=20_000), x)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(first[0], other[0])
    # PennyLane's parameter-shift rule through the router's tapes: the same estimator
    # (of weight gradients: PennyLane's rule shifts no broadcast angle, so it cannot
    # train the data re-uploading circuit on a batch at all; the compiled path can)
    sampled = shot_layer(several_measurements, router(seed=5), shots=20_000)
    qnode_path = TorchLayer(sampled.qnode, SHAPES, compiled=False)
    qnode_path.load_state_dict(sampled.state_dict())
    found = []
    for model in (qnode_path, sampled):
        values = model(x)
        values.sum().backward()
        found.append((values.detach(), model.qnode_weights["weights"].grad))
    assert sampled.compiled and not qnode_path.compiled
    torch.testing.assert_close(found[0][0], found[1][0], atol=0.05, rtol=0)
    torch.testing.assert_close(found[0][1], found[1][1], atol=0.3, rtol=0)


@pytest.mark.parametrize(
    "shots, qnode_kwargs, reason",
    [
        ([100, 200], {}, "a shot vector"),
        (100, {"diff_method": "adjoint"}, "diff_method='adjoint' with shots"),
        (100, {"gradient_kwargs": {"h": 0.1}}, "gradient options"),
    ],
)
def test_what_the_sampled_path_cannot_do_takes_the_qnode_path_and_says_so(
    shots, qnode_kwargs, reason
):
    qnode = qml.set_shots(
        qml.QNode(reupload, router(), interface="torch", **qnode_kwargs), shots=shots
    )
    with pytest.warns(CompiledPathWarning, match=reason):
        routed = TorchLayer(qnode, SHAPES)
    assert not routed.compiled
