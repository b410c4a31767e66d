"""``circuit_function`` with shots on a priced backend (the IonQ emulator): every
circuit is submitted and billed once, the forward batch included."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, ionq

from qstore_pl.jax import circuit_function
from qstore_pl.layers.compiled import CompiledPathWarning

jax.config.update("jax_enable_x64", True)
emulator = pytest.fixture(emulator_server, name="emulator")

#: Every IonQ job costs max(0.5, shots x (1e-4 N1q + 1e-3 N2q)) USD.
PRICE = {"model": "per_gate_shot", "cost_1q": 1e-4, "cost_2q": 1e-3, "minimum": 0.5}


def circuit(x, w):
    qml.RX(x[..., 0], wires=0)
    qml.RY(w[0], wires=1)
    qml.CNOT([0, 1])
    qml.RZ(w[1], wires=1)
    qml.RY(w[1] * 0.5, wires=0)
    return qml.expval(qml.Z(0) @ qml.Z(1))


def submitted_circuits(emulator) -> int:
    return sum(len(job.payload["input"].get("circuits", [None])) for job in emulator.jobs.values())


def test_a_step_with_shots_pays_for_the_forward_batch_once(emulator, tmp_path):
    """A training step on IonQ runs the tape path: the forward batch (3 circuits), then
    for the gradient only the shifted copies of the rows it needs, two per row and
    sample (the weights' three rows; the input's angle is not differentiated):
    3 + 3 x 3 x 2 = 21 circuits, as many as the ledger bills. The gradient equals
    default.qubit's exact one within the shot noise (the emulator's simulator target
    samples)."""
    dev = qml.device(
        "qstore.router",
        wires=2,
        router_config=config(tmp_path, ionq("ionq_sim", "simulator", pricing=PRICE)),
    )
    f = circuit_function(qml.set_shots(qml.QNode(circuit, dev, interface="jax"), 2000))
    x, w = jnp.asarray([[0.3], [1.1], [2.0]]), jnp.asarray([0.4, 0.9])

    def loss(fn, w):
        return jnp.sum(fn(x, w))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompiledPathWarning)  # IonQ runs tapes
        value, grad = jax.value_and_grad(lambda w: loss(f, w))(w)
    assert submitted_circuits(emulator) == 3 + 3 * 3 * 2
    routed = sum(t.circuits for t in dev.routing_report().totals.values())
    assert routed == 21
    assert dev.cost_report().shots == {"ionq_sim": 21 * 2000}
    reference = qml.QNode(circuit, qml.device("default.qubit"), interface="jax")
    expected = jax.value_and_grad(lambda w: loss(reference, w))(w)
    np.testing.assert_allclose(value, expected[0], atol=0.15)
    np.testing.assert_allclose(grad, expected[1], atol=0.15)
