"""qml.qnn.TorchLayer and qstore_pl.torch.QuantumLayer through qstore.router."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch

from qstore_pl.torch import QuantumLayer

N = 3


def circuit(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N))
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(i)) for i in range(N)]


SHAPES = {"weights": (2, N, 3)}


def torch_layer(device_name: str, seed: int = 0) -> qml.qnn.TorchLayer:
    torch.manual_seed(seed)
    qnode = qml.QNode(circuit, qml.device(device_name, wires=N), interface="torch")
    return qml.qnn.TorchLayer(qnode, SHAPES)


def test_torch_layer_on_the_router_matches_default_qubit_values_and_gradients():
    routed, reference = torch_layer("qstore.router"), torch_layer("default.qubit")
    x = torch.tensor(np.random.default_rng(0).uniform(0, np.pi, (6, N)), requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    cot = torch.tensor(np.random.default_rng(1).normal(size=(6, N)))
    (routed(x) * cot).sum().backward()
    (reference(x_ref) * cot).sum().backward()
    torch.testing.assert_close(routed(x), reference(x_ref), atol=1e-6, rtol=0)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(routed.weights.grad, reference.weights.grad, atol=1e-6, rtol=0)


def test_torch_layer_gradients_match_finite_differences():
    layer = torch_layer("qstore.router")
    x = torch.tensor(np.random.default_rng(2).uniform(0, np.pi, (2, N)))
    layer(x).sum().backward()
    w = layer.weights.detach().numpy().astype(np.float64)  # TorchLayer's weights are float32
    qnode = qml.QNode(circuit, qml.device("default.qubit", wires=N))

    def loss(weights):
        return float(np.sum(np.stack(qnode(x.numpy(), weights))))

    fd = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        d = np.zeros_like(w)
        d[i] = 1e-6
        fd[i] = (loss(w + d) - loss(w - d)) / 2e-6
    np.testing.assert_allclose(layer.weights.grad.numpy(), fd, atol=1e-5)


def test_hybrid_torch_model_learns_through_the_router():
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.uniform(0, np.pi, (40, N)), dtype=torch.float32)
    y = (x[:, 0] < np.pi / 2).long()
    model = torch.nn.Sequential(QuantumLayer(N, 2, entanglement="ring"), torch.nn.Linear(N, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize(
    "options, n_features",
    [
        ({}, 3),
        ({"encoding": "amplitude", "measurement": "probs"}, 5),
        ({"ansatz": "reuploading"}, 2),
    ],
)
def test_torch_quantum_layer_matches_default_qubit(options, n_features):
    layer = QuantumLayer(N, 2, **options)
    reference = QuantumLayer(N, 2, device="default.qubit", **options)
    reference.load_state_dict(layer.state_dict())
    x = torch.tensor(np.random.default_rng(4).uniform(0.1, 2, (4, n_features)))
    out = layer(x)
    assert out.shape == (4, layer.output_dim)
    torch.testing.assert_close(out, reference(x), atol=1e-6, rtol=0)
