"""Tests of the ``qstore.qsim`` device against ``default.qubit``.

Tolerances. qsim computes in complex64: every gate rounds amplitudes to float32
(relative error ~6e-8), and gate matrices themselves are float32. On the random
circuits of the class docstring's measurement (2-12 qubits, up to 200 gates) the
largest error in an expectation value or probability was 7e-7. ``VALUES`` leaves a
factor of ~3 of headroom for the deepest circuits here (~60 gates, observables with
coefficients up to 2), and is still far below what a real bug causes (a wrong wire,
sign, angle or global phase moves results by >= 1e-3). Parameter-shift derivatives
combine two evaluations per parameter, each off by up to ``VALUES``, weighted 1/2.
Sampled results use the device seed, so they are deterministic; their tolerances
are statistical (5 standard deviations of the estimator) and hold for any seed.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane.exceptions import DeviceError
from scipy.stats import unitary_group

from qstore_pl.devices.qsim import QsimDevice, translate
from qstore_pl.devices.qsim.simulator import QsimSimulator
from qstore_pl.exceptions import InvalidParameterError

VALUES = 2e-6
DERIVATIVES = 4e-6
SHOTS = 20_000
STAT = 5 / np.sqrt(SHOTS)  # 5 sigma of a mean of +-1 outcomes


def _qsim(**kwargs) -> QsimDevice:
    return qml.device("qstore.qsim", **kwargs)


# ------------------------------------------------------------------ gate translation


def _qsim_unitary(op: qml.operation.Operator, wire_order) -> np.ndarray:
    """The unitary qsim applies for ``op``: one simulation per basis state."""
    # an Identity on all wires first fixes the plan's wire order to ``wire_order``
    tape = qml.tape.QuantumScript([qml.Identity(wire_order), op])
    circuit = translate.build_plan(tape).bind(tape).circuit(0)
    simulator = QsimSimulator(max_fused_gate_size=2, num_threads=1)
    return np.array([simulator.state(circuit, k) for k in range(2 ** len(wire_order))]).T


_U2 = unitary_group.rvs(4, random_state=7)
_U1 = unitary_group.rvs(2, random_state=8) * np.exp(0.3j)

TRANSLATED_OPS = [
    *(qml.PauliX(1), qml.PauliY(0), qml.PauliZ(2), qml.Hadamard(1), qml.S(0), qml.T(2)),
    *(qml.SX(1), qml.RX(0.7, 2), qml.RY(-1.3, 0), qml.RZ(2.1, 1), qml.PhaseShift(0.4, 0)),
    qml.U1(-0.9, 2),
    qml.Rot(0.3, -1.1, 2.5, 1),
    *(qml.CNOT([2, 0]), qml.CZ([0, 2]), qml.SWAP([1, 2]), qml.ISWAP([2, 1])),
    *(qml.IsingXX(0.5, [0, 2]), qml.IsingYY(-0.8, [1, 0]), qml.IsingZZ(1.9, [2, 1])),
    *(qml.Toffoli([2, 0, 1]), qml.CCZ([1, 2, 0]), qml.CSWAP([1, 0, 2])),
    *(qml.CY([1, 0]), qml.CH([0, 2]), qml.CRX(0.6, [2, 0]), qml.CRY(-0.4, [0, 1])),
    *(qml.CRZ(1.2, [1, 2]), qml.CRot(0.1, 0.2, 0.3, [2, 1])),
    qml.ControlledPhaseShift(0.9, [0, 2]),
    qml.MultiControlledX(wires=[0, 2, 1], control_values=[True, False]),
    qml.ctrl(qml.RX(0.5, 0), control=[2, 1], control_values=[0, 1]),
    qml.ctrl(qml.Rot(0.4, 0.5, 0.6, 1), control=[0]),
    qml.ctrl(qml.QubitUnitary(_U1, 1), control=[2, 0], control_values=[1, 0]),
    qml.ControlledQubitUnitary(_U2, wires=[1, 2, 0]),
    qml.QubitUnitary(_U2, [2, 0]),
    qml.QubitUnitary(unitary_group.rvs(8, random_state=9), [1, 2, 0]),
    *(qml.MultiRZ(0.7, [0, 1, 2]), qml.PauliRot(0.3, "XYZ", [2, 0, 1])),
    *(qml.IsingXY(0.6, [1, 2]), qml.DoubleExcitation(0.4, [0, 1, 2, 3])),
    qml.adjoint(qml.SX(1)),
    qml.adjoint(qml.CRot(0.1, 0.2, 0.3, [0, 2])),
    qml.GlobalPhase(0.8, wires=[0, 1, 2]),
    qml.ctrl(qml.GlobalPhase(0.8), control=[1, 2]),
]


@pytest.mark.parametrize("op", TRANSLATED_OPS, ids=lambda op: op.name)
def test_gate_translation_matches_pennylane_unitary(op):
    """Full unitaries (global phase included: it matters once a gate is controlled)."""
    wire_order = [0, 1, 2, 3] if len(op.wires) > 3 else [0, 1, 2]
    expected = qml.matrix(op, wire_order=wire_order)
    assert np.allclose(_qsim_unitary(op, wire_order), expected, atol=VALUES, rtol=0)


def test_every_native_gate_is_tested():
    tested = {op.name for op in TRANSLATED_OPS}
    assert set(translate.NATIVE_GATES) <= tested


def test_translatability_follows_matrix_width():
    assert translate.is_translatable(qml.QubitUnitary(np.eye(64), range(6)))
    assert not translate.is_translatable(qml.QubitUnitary(np.eye(128), range(7)))
    # a native base gate takes any number of controls
    assert translate.is_translatable(qml.MultiControlledX(wires=range(12)))


# --------------------------------------------------------- random circuits vs default


_ONE_QUBIT = (qml.RX, qml.RY, qml.RZ, qml.PhaseShift)


def random_circuit(rng: np.random.Generator, n: int, depth: int) -> list:
    """Rotations, CNOT/CZ, IsingZZ, Rot, controlled gates and 2-qubit unitaries."""
    ops = [qml.Hadamard(w) for w in range(n)]
    for _ in range(depth):
        w = [int(x) for x in rng.permutation(n)]
        angle = rng.uniform(-np.pi, np.pi)
        kind = rng.integers(9)
        if kind <= 2:
            ops.append(_ONE_QUBIT[rng.integers(4)](angle, w[0]))
        elif kind == 3:
            ops.append(qml.CNOT(w[:2]) if rng.integers(2) else qml.CZ(w[:2]))
        elif kind == 4:
            ops.append(qml.IsingZZ(angle, w[:2]))
        elif kind == 5:
            ops.append(qml.Rot(*rng.uniform(-np.pi, np.pi, 3), w[0]))
        elif kind == 6:
            ops.append(qml.CRX(angle, w[:2]) if rng.integers(2) else qml.CRot(1, angle, 2, w[:2]))
        elif kind == 7:
            ops.append(qml.QubitUnitary(unitary_group.rvs(4, random_state=rng), w[:2]))
        else:
            ops.append(qml.Toffoli(w[:3]) if n >= 3 else qml.SX(w[0]))
    return ops


def random_measurements(rng: np.random.Generator, n: int) -> list:
    w = [int(x) for x in rng.permutation(n)]
    hermitian = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    hamiltonian = qml.Hamiltonian(
        [0.5, -1.2, 2.0], [qml.Z(w[0]) @ qml.Z(w[1]), qml.X(w[0]), qml.Y(w[1]) @ qml.X(w[-1])]
    )
    return [
        qml.expval(qml.Z(w[0])),
        qml.expval(qml.X(w[0]) @ qml.Y(w[1]) @ qml.Z(w[-1])),
        qml.expval(hamiltonian),
        qml.var(hamiltonian),
        qml.var(qml.Y(w[1])),
        qml.expval(qml.Hermitian(hermitian + hermitian.conj().T, w[:2])),
        qml.expval(qml.Projector([1, 0], w[:2])),
        qml.probs(wires=w[:2]),
        qml.probs(),
        qml.state(),
        qml.density_matrix(wires=w[:2]),
    ]


def assert_same_results(got, expected, tol=VALUES):
    """Same nesting, types of containers, shapes and values.

    Rounding errors scale with the size of the observable (a variance of a
    Hamiltonian with large coefficients is in the hundreds): ``tol`` is relative too.
    """
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, type(expected)) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same_results(g, e, tol)
        return
    assert np.shape(got) == np.shape(expected)
    assert np.allclose(got, expected, atol=tol, rtol=tol), np.max(np.abs(got - expected))


@pytest.mark.parametrize("seed", range(6))
def test_random_circuits_match_default_qubit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    tape = qml.tape.QuantumScript(random_circuit(rng, n, 40), random_measurements(rng, n))
    expected = qml.execute([tape], qml.device("default.qubit"))[0]
    assert_same_results(qml.execute([tape], _qsim(wires=n))[0], expected)


@pytest.mark.parametrize("seed", range(3))
def test_expectations_alone_match_default_qubit(seed):
    """Only Pauli expectations: <Z_i> from marginal probabilities, the rest in qsim."""
    rng = np.random.default_rng(100 + seed)
    n = 5
    z_sum = qml.Hamiltonian([0.3, 0.7, -1.1, 0.2], [qml.I(0), qml.Z(0), qml.Z(3), qml.Z(0)])
    mps = [qml.expval(qml.Z(i)) for i in range(n)] + [qml.expval(z_sum)]
    mps += [qml.var(qml.X(0) @ qml.Z(3)), qml.expval(qml.Y(1) @ qml.Y(2) + 0.5 * qml.X(4))]
    tape = qml.tape.QuantumScript(random_circuit(rng, n, 40), mps)
    expected = qml.execute([tape], qml.device("default.qubit"))[0]
    assert_same_results(qml.execute([tape], _qsim())[0], expected)


def test_wide_pauli_words_and_big_hamiltonians():
    """Words on > 6 qubits take qsim's copy-based path; big variances the state path."""
    rng = np.random.default_rng(5)
    n = 8
    ops = random_circuit(rng, n, 40)
    word = qml.prod(*(qml.X(i) if i % 2 else qml.Y(i) for i in range(n)))
    terms = [qml.Z(i) @ qml.X((i + 1) % n) for i in range(n)] + [qml.Y(i) for i in range(n)]
    big = qml.Hamiltonian(rng.uniform(-1, 1, len(terms)) * 9, terms)  # 16 terms: 256 in H^2
    tape = qml.tape.QuantumScript(ops, [qml.expval(word), qml.var(word), qml.var(big)])
    expected = qml.execute([tape], qml.device("default.qubit"))[0]
    assert_same_results(qml.execute([tape], _qsim())[0], expected)


@pytest.mark.parametrize(
    "widths, depth, bound", [((2, 6, 10), 200, 2e-6), ((2, 3), 2000, 5e-6)], ids=["200", "2000"]
)
def test_precision_bound_of_the_docstring(widths, depth, bound):
    """The class docstring's single-precision claim, on deeper random circuits.

    With few qubits every gate acts on the same amplitudes and float32 rounding
    drifts the state's norm by ~1.5e-8 per gate: expectation values must be divided
    by the norm to stay within the bound at 2000 gates.
    """
    rng = np.random.default_rng(11)
    worst = 0.0
    for n in widths:
        mps = [qml.expval(qml.Z(i)) for i in range(n)] + [qml.probs(wires=range(min(n, 4)))]
        tape = qml.tape.QuantumScript(random_circuit(rng, n, depth), mps)
        got = qml.execute([tape], _qsim())[0]
        expected = qml.execute([tape], qml.device("default.qubit"))[0]
        worst = max(worst, *(np.max(np.abs(g - e)) for g, e in zip(got, expected)))
    assert worst < bound


def test_wire_labels_and_measured_only_wires():
    dev = _qsim(wires=["a", 7, "c"])
    ref = qml.device("default.qubit", wires=["a", 7, "c"])

    def circuit():
        qml.RY(0.4, "c")
        qml.CNOT(["c", 7])
        return qml.expval(qml.Z(7) @ qml.X("a")), qml.probs(wires=["a", "c"]), qml.state()

    assert_same_results(qml.QNode(circuit, dev)(), qml.QNode(circuit, ref)())


def test_circuits_narrower_than_the_device_and_on_no_wire():
    for tape, wires in [
        (qml.tape.QuantumScript([qml.RX(0.3, 0)], [qml.state()]), 3),
        (qml.tape.QuantumScript([qml.GlobalPhase(0.3)], [qml.state()]), None),
    ]:
        expected = qml.execute([tape], qml.device("default.qubit", wires=wires))[0]
        assert_same_results(qml.execute([tape], _qsim(wires=wires))[0], expected)


def test_state_preparations_and_gate_options():
    state = np.exp(1j * np.arange(8)) * np.arange(1, 9)
    state /= np.linalg.norm(state)

    def circuit(prep):
        prep()
        qml.CRY(0.7, [0, 2])
        qml.BasisState(np.array([1, 0]), wires=[1, 2])  # mid-circuit: decomposed
        return qml.state()

    for prep in (
        lambda: qml.StatePrep(state, wires=[2, 0, 1]),
        lambda: qml.StatePrep(state[:4] / np.linalg.norm(state[:4]), wires=[1, 2]),
        lambda: qml.BasisState(np.array([1, 1, 0]), wires=[0, 1, 2]),
    ):
        expected = qml.QNode(circuit, qml.device("default.qubit", wires=3))(prep)
        for fusion in (1, 3, 6):
            dev = _qsim(wires=3, max_fused_gate_size=fusion, cpu_threads=1)
            assert_same_results(qml.QNode(circuit, dev)(prep), expected)


def test_mid_circuit_measurements_are_deferred():
    def circuit(x):
        qml.RX(x, 0)
        m = qml.measure(0)
        qml.cond(m, qml.RY)(0.8, 1)
        return qml.expval(qml.Z(1)), qml.probs(wires=[0, 1])

    expected = qml.QNode(circuit, qml.device("default.qubit"))(0.9)
    assert_same_results(qml.QNode(circuit, _qsim())(0.9), expected)


# ------------------------------------------------------------- broadcasting, sweeps


def test_broadcast_tapes_run_natively_and_match_default_qubit(mocker):
    def circuit(x, y):
        qml.RX(x, 0)
        qml.CRY(y, [0, 1])
        qml.QubitUnitary(_U2, [1, 2])
        qml.Rot(x, 0.3, y, 2)
        qml.GlobalPhase(x)
        return qml.expval(qml.Z(1)), qml.var(qml.X(2)), qml.probs(wires=[0, 2]), qml.state()

    x, y = np.array([0.1, 0.5, 2.0]), np.array([1.0, -0.4, 0.3])
    dev = _qsim(wires=3)
    execute = mocker.spy(QsimDevice, "execute")
    got = qml.QNode(circuit, dev)(x, y)
    assert [t.batch_size for t in execute.call_args.args[1]] == [3]  # not expanded
    assert_same_results(got, qml.QNode(circuit, qml.device("default.qubit"))(x, y))
    # one broadcast parameter among fixed ones
    got = qml.QNode(circuit, dev)(x, 0.2)
    assert_same_results(got, qml.QNode(circuit, qml.device("default.qubit"))(x, 0.2))


def test_broadcast_state_preparation():
    states = unitary_group.rvs(4, random_state=3)[:3]

    def circuit():
        qml.StatePrep(states, wires=[0, 1])
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1)), qml.state()

    expected = qml.QNode(circuit, qml.device("default.qubit"))()
    assert_same_results(qml.QNode(circuit, _qsim())(), expected)


def test_tapes_of_one_structure_share_one_gate_plan(mocker):
    build_plan = mocker.spy(translate, "build_plan")
    rng = np.random.default_rng(3)

    def tape(params):
        ops = [qml.RX(params[0], 0), qml.CRZ(params[1], [0, 1]), qml.Rot(*params[2:], 1)]
        return qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(1))])

    tapes = [tape(rng.uniform(-3, 3, 5)) for _ in range(6)]
    dev = _qsim()
    got = qml.execute(tapes, dev)
    assert build_plan.call_count == 1
    expected = qml.execute(tapes, qml.device("default.qubit"))
    assert_same_results(tuple(got), tuple(expected))


# --------------------------------------------------------------------------- shots


def test_sampled_measurements_are_statistically_right():
    dev = _qsim(wires=3, seed=42)

    @qml.set_shots(SHOTS)
    @qml.qnode(dev)
    def circuit():
        qml.RY(1.1, 0)
        qml.CNOT([0, 1])
        qml.RX(0.6, 2)
        return (
            qml.expval(qml.Z(0) @ qml.Z(1)),
            qml.expval(qml.Z(2)),
            qml.var(qml.Z(0)),
            qml.probs(wires=[0, 2]),
            qml.sample(wires=[0, 1]),
            qml.counts(wires=[2]),
        )

    zz, z2, var, probs, samples, counts = circuit()
    assert zz == 1.0  # perfectly correlated after the CNOT
    assert abs(z2 - np.cos(0.6)) < STAT
    assert abs(var - np.sin(1.1) ** 2) < STAT
    p0 = np.cos(0.55) ** 2
    exact = np.kron([p0, 1 - p0], [np.cos(0.3) ** 2, np.sin(0.3) ** 2])
    assert np.allclose(probs, exact, atol=STAT / 2, rtol=0)
    assert samples.shape == (SHOTS, 2) and np.all(samples[:, 0] == samples[:, 1])
    assert sum(counts.values()) == SHOTS and set(counts) <= {"0", "1"}


def test_shot_vectors_have_default_qubit_structure():
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1)), qml.probs(wires=[0]), qml.sample(wires=[1])

    shots = [(5000, 2), 3000]
    x = np.array([0.3, 1.2])
    got = qml.set_shots(qml.QNode(circuit, _qsim(seed=1)), shots)(x)
    expected = qml.set_shots(qml.QNode(circuit, qml.device("default.qubit", seed=1)), shots)(x)
    assert len(got) == len(expected) == 3
    for g, e, n in zip(got, expected, (5000, 5000, 3000)):
        assert [np.shape(r) for r in g] == [np.shape(r) for r in e]
        tol = 5 / np.sqrt(n)
        assert np.allclose(g[0], np.cos(x), atol=2 * tol, rtol=0)
        assert np.allclose(g[1][:, 0], np.cos(x / 2) ** 2, atol=tol, rtol=0)


def test_seed_makes_samples_reproducible():
    def circuit():
        qml.Hadamard(0)
        qml.RY(0.4, 1)
        return qml.sample(wires=[0, 1])

    def draw(seed):
        return qml.set_shots(qml.QNode(circuit, _qsim(seed=seed)), 200)()

    assert np.array_equal(draw(7), draw(7))
    assert not np.array_equal(draw(7), draw(8))


# --------------------------------------------------------------------------- gradients


def _gradient_circuit(x, w):
    qml.RX(x[0], 0)
    qml.RY(x[1], 1)
    qml.CNOT([0, 1])
    qml.IsingZZ(w[0], [1, 2])
    qml.CRX(w[1], [2, 0])
    qml.Rot(w[2], x[0], w[0], 2)
    return qml.expval(qml.Z(0) @ qml.X(2)), qml.expval(
        qml.Hamiltonian([0.4, -1.0], [qml.Y(1), qml.Z(2)])
    )


def test_parameter_shift_gradients_autograd():
    from pennylane import numpy as pnp

    x, w = pnp.array([0.4, -1.1], requires_grad=True), pnp.array([0.3, 0.8, -0.5])
    qsim = qml.QNode(_gradient_circuit, _qsim(wires=3), diff_method="parameter-shift")
    ref = qml.QNode(_gradient_circuit, qml.device("default.qubit"), diff_method="backprop")

    def cost(node):
        return lambda x, w: qml.math.stack(node(x, w)) @ pnp.array([1.0, 0.5])

    for got, expected in zip(qml.jacobian(cost(qsim))(x, w), qml.jacobian(cost(ref))(x, w)):
        assert np.allclose(got, expected, atol=DERIVATIVES, rtol=0)


def test_best_diff_method_is_parameter_shift_and_matches_torch():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.4, -1.1], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.3, 0.8, -0.5], dtype=torch.float64, requires_grad=True)
    qsim = qml.QNode(_gradient_circuit, _qsim(wires=3), interface="torch")
    assert qml.workflow.get_best_diff_method(qsim)(x, w) == "parameter-shift"
    ref = qml.QNode(_gradient_circuit, qml.device("default.qubit"), interface="torch")

    def grads(node):
        x.grad = w.grad = None
        out = node(x, w)
        (out[0] + 0.5 * out[1]).backward()
        return torch.cat([x.grad, w.grad]).numpy().copy(), out[0].dtype

    (got, dtype), (expected, _) = grads(qsim), grads(ref)
    assert dtype == torch.float64
    assert np.allclose(got, expected, atol=DERIVATIVES, rtol=0)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "op, name",
    [
        (qml.RX(np.nan, 0), "RX"),
        (qml.CRZ(np.inf, [1, 0]), "CRZ"),
        (qml.QubitUnitary(np.array([[1, 0], [0, np.nan]]), 1), "QubitUnitary"),
    ],
)
def test_non_finite_parameters_raise_value_error_naming_the_gate(op, name):
    tape = qml.tape.QuantumScript([qml.Hadamard(0), op], [qml.expval(qml.Z(0))])
    with pytest.raises(ValueError, match=name) as info:
        qml.execute([tape], _qsim(wires=2))
    assert isinstance(info.value, InvalidParameterError)


def test_broadcast_nan_is_caught():
    tape = qml.tape.QuantumScript([qml.RY(np.array([0.1, np.nan]), 0)], [qml.expval(qml.Z(0))])
    with pytest.raises(ValueError, match="RY"):
        qml.execute([tape], _qsim())


def test_circuit_wider_than_the_device_is_a_device_error():
    tape = qml.tape.QuantumScript([qml.CNOT([0, 1]), qml.CNOT([1, 2])], [qml.expval(qml.Z(2))])
    with pytest.raises(DeviceError, match="3 wires"):
        qml.execute([tape], _qsim(wires=2))


def test_unsupported_mcm_method_is_a_device_error():
    @qml.qnode(_qsim(), mcm_method="tree-traversal")
    def circuit():
        qml.measure(0)
        return qml.expval(qml.Z(0))

    with pytest.raises(DeviceError, match="deferred"):
        circuit()


@pytest.mark.parametrize("kwargs", [{"max_fused_gate_size": 7}, {"cpu_threads": 0}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        QsimDevice(wires=2, **kwargs)
