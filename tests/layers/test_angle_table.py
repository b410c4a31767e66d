"""The angle table on the router's compiled path: stacked VJPs against default.qubit.

A table's ``T`` stacked cotangents run as one adjoint sweep with ``T`` adjoint states
per circuit; each must equal the VJP default.qubit's Jacobian gives, sample by sample.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane.tape import QuantumScript

from qstore_pl.devices.batched.binding import AngleSource, ValueProgram
from qstore_pl.devices.batched.device import BatchedDevice
from qstore_pl.interfaces import broadcast_program
from qstore_pl.layers.angle_table import AngleTable

WIRES = 3


def skeleton() -> QuantumScript:
    """Four angle gates (the table's rows), one constant angle and an entangler."""
    ops = [
        qml.RX(0.0, wires=0),
        qml.RY(0.0, wires=1),
        qml.CNOT([0, 1]),
        qml.RZ(0.7, wires=1),  # a constant: not a row
        qml.CRX(0.0, wires=[1, 2]),
        qml.RY(0.0, wires=2),
    ]
    return QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(2)), qml.probs(wires=[1, 2])])


SLOTS = [0, 1, 3, 4]


def reference_jacobian(angles: np.ndarray) -> np.ndarray:
    """``(B, O, K)`` per-sample Jacobians on default.qubit (backprop, autograd)."""
    dev = qml.device("default.qubit", wires=WIRES)

    def outputs(row):
        params = list(skeleton().get_parameters(trainable_only=False))
        for k, slot in enumerate(SLOTS):
            params[slot] = row[k]
        tape = skeleton().bind_new_parameters(params, list(range(len(params))))
        z, probs = qml.execute([tape], dev, diff_method="backprop")[0]
        return qml.math.hstack([qml.math.reshape(z, (1,)), probs])

    return np.stack(
        [qml.jacobian(outputs)(qml.numpy.array(angles[:, b])) for b in range(angles.shape[1])]
    )


@pytest.mark.parametrize("one_per_sweep", [False, True])
def test_stacked_cotangents_give_each_samples_vjp(monkeypatch, one_per_sweep):
    if one_per_sweep:  # the adjoint states' memory bound splits the 3 cotangents
        monkeypatch.setattr(broadcast_program, "MAX_JACOBIAN_AMPLITUDES", 1)
    router = qml.device(
        "qstore.router",
        wires=WIRES,
        precision="double",
        router_config={"backends": ["qstore.batched"]},
    )
    table = AngleTable(skeleton(), SLOTS, router, skeleton)
    rng = np.random.default_rng(3)
    angles = rng.uniform(0, 2 * np.pi, (len(SLOTS), 4))
    cotangents = rng.normal(size=(3, 4, table.n_outputs))
    jacobian = reference_jacobian(angles)  # (B, O, K)
    table.forward(angles)
    with qml.Tracker(router) as tracker:
        grads = table.vjp(angles, cotangents)  # the kept forward pass, 3 adjoint states each
    assert len(tracker.history["backend"]) == (3 if one_per_sweep else 1)  # no forward
    expected = np.einsum("tbo,bok->tkb", cotangents, jacobian)
    np.testing.assert_allclose(grads, expected, atol=1e-10)
    np.testing.assert_allclose(table.jacobian(angles), jacobian, atol=1e-10)
    assert table.last_path == "compiled"


def test_stacked_cotangents_refuse_shared_arguments():
    tape = QuantumScript([qml.Identity(wires=[0]), qml.RX(0.0, wires=0)], [qml.expval(qml.Z(0))])
    program = ValueProgram(tape, [AngleSource(1, 0, 1.0)], [True, False])
    device = BatchedDevice(wires=1)
    arrays = (np.zeros((2, 1)), np.array([0.3]))
    bound = program.bind(arrays)
    psi, _ = program.forward(device, bound)
    with pytest.raises(ValueError, match="stacked copies of the batch for per-sample"):
        program.vjp(device, bound, psi, np.ones((4, 1)), arrays, [1])
    (grad,) = program.vjp(device, bound, psi, np.ones((2, 1)), arrays, [1])[1:]
    np.testing.assert_allclose(grad, [-2 * np.sin(0.3)], atol=1e-6)
