"""The ``qstore.aer`` device: noisy circuits on Qiskit Aer give default.mixed's values
exactly (density matrix) or within their sampling error (both methods), and its
parameter-shift derivatives equal default.mixed's."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

pytest.importorskip("qiskit_aer", reason="the qiskit extra is not installed")

from qstore_pl.devices.aer import AerDevice

X0 = np.array([0.3, -0.7, 1.1])
WIRES = ["a", 7, "c"]  # labels that are not positions: the wire mapping is exercised


def noisy(x, p):
    """Gates Aer runs, gates it lacks (CRX, IsingXX on a density matrix), and channels on
    one and two wires, the two-wire one not symmetric in its wires."""
    noisy_operations(x, p)
    return (*numbers(), qml.density_matrix([WIRES[0], WIRES[2]]))


def numbers():
    a, b, c = WIRES
    return qml.expval(qml.Z(a) @ qml.X(c)), qml.probs([b, c]), qml.var(qml.Y(b))


def noisy_operations(x, p):
    a, b, c = WIRES
    qml.RX(x[0], a)
    qml.CNOT([a, b])
    qml.DepolarizingChannel(p, b)
    qml.AmplitudeDamping(0.2, a)
    qml.RY(x[1], c)
    qml.IsingXX(x[2], [b, c])
    qml.QubitChannel(_two_wire_kraus(), wires=[a, c])
    qml.CRX(0.4, [c, a])
    qml.PhaseDamping(0.3, c)


def _two_wire_kraus():
    """Amplitude damping of the first wire controlled by the second being 1."""
    g = 0.3
    k0 = np.diag([1, 1, 1, np.sqrt(1 - g)]).astype(complex)
    k1 = np.zeros((4, 4), complex)
    k1[1, 3] = np.sqrt(g)  # |11> -> |01>
    return [k0, k1]


def test_density_matrix_values_equal_default_mixed():
    got = qml.QNode(noisy, AerDevice(wires=WIRES))(X0, 0.1)
    want = qml.QNode(noisy, qml.device("default.mixed", wires=WIRES))(X0, 0.1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-12, rtol=0)
    rho = np.asarray(got[3])
    assert np.trace(rho @ rho).real < 0.95  # mixed: the channels are applied


def test_a_broadcast_circuit_gives_one_value_per_element():
    xs = np.stack([X0, X0[::-1], -X0], axis=1)  # each parameter broadcast over 3

    def circuit(x):
        noisy_operations(x, 0.1)
        return numbers()

    got = qml.QNode(circuit, AerDevice(wires=WIRES))(xs)
    want = qml.QNode(circuit, qml.device("default.mixed", wires=WIRES))(xs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-12, rtol=0)


def sampled(x, p):
    a, b, c = WIRES
    qml.RX(x[0], a)
    qml.CNOT([a, b])
    qml.DepolarizingChannel(p, b)
    qml.AmplitudeDamping(0.2, a)
    qml.RY(x[1], c)
    qml.IsingXX(x[2], [b, c])
    # non-commuting observables: measured in two bases
    return qml.expval(qml.Z(a) @ qml.X(c)), qml.expval(qml.Y(b)), qml.probs([a, b])


@pytest.mark.parametrize("method", ["density_matrix", "statevector"])
def test_sampled_values_agree_with_the_exact_ones_within_their_error(method):
    shots = 40_000
    got = qml.QNode(sampled, AerDevice(wires=WIRES, method=method, seed=7), shots=shots)(X0, 0.2)
    want = qml.QNode(sampled, qml.device("default.mixed", wires=WIRES))(X0, 0.2)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        # a +-1 observable's standard error is at most 1/sqrt(shots); a probability's less
        assert np.all(np.abs(g - w) < 5 / np.sqrt(shots)), (method, g, w)


def test_a_shot_vector_gives_one_result_per_copy():
    qnode = qml.QNode(sampled, AerDevice(wires=WIRES, seed=1), shots=[(500, 3)])
    results = qnode(X0, 0.2)
    assert len(results) == 3
    assert all(len(copy) == 3 and np.shape(copy[2]) == (4,) for copy in results)
    assert not np.allclose(results[0][2], results[1][2])  # different shots in each copy


def test_trajectories_refuse_an_analytic_circuit_and_say_what_to_use():
    device = AerDevice(wires=WIRES, method="statevector")
    with pytest.raises(qml.exceptions.DeviceError, match="method='density_matrix'"):
        qml.QNode(sampled, device)(X0, 0.2)


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method 'stabilizer'"):
        AerDevice(wires=2, method="stabilizer")


def test_parameter_shift_derivatives_equal_default_mixed():
    """Gate angles and the channel strength: the device computes no derivatives, the
    QNode shifts its parameters (``"best"`` picks parameter shift)."""

    def circuit(x, p):
        noisy_operations(x, p)
        return numbers()

    def jacobian(device, diff_method):
        qnode = qml.QNode(circuit, device, diff_method=diff_method)
        return qml.jacobian(lambda x, p: qml.math.hstack(qnode(x, p)))(x, p)

    x, p = pnp.array(X0, requires_grad=True), pnp.array(0.1, requires_grad=True)
    got = jacobian(AerDevice(wires=WIRES), "best")
    want = jacobian(qml.device("default.mixed", wires=WIRES), "backprop")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-10, rtol=0)
    assert np.max(np.abs(got[1])) > 1e-3  # the channel strength's derivative is there
