"""QCNN templates against TensorFlow Quantum's tutorial circuits (rebuilt in Cirq), on
default.qubit, the router and the IonQ path; broadcasting, gradients and bad input."""

import cirq
import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, ionq
from pennylane import numpy as pnp

from qstore_pl.templates import (
    PORTABLE_GATES,
    QCNN,
    ClusterState,
    QCNNConvolution,
    QCNNPooling,
)
from qstore_pl.templates.qcnn import convolution_pairs

emulator = pytest.fixture(emulator_server, name="emulator")
rng = np.random.default_rng(11)


# ---- the tutorial's circuits, written with Cirq powers (a symbol t is angle pi*t here)


def tfq_rotations(q, t):
    return [cirq.X(q) ** t[0], cirq.Y(q) ** t[1], cirq.Z(q) ** t[2]]


def tfq_unit(a, b, t):
    return [
        *tfq_rotations(a, t[0:3]),
        *tfq_rotations(b, t[3:6]),
        cirq.ZZ(a, b) ** t[6],
        cirq.YY(a, b) ** t[7],
        cirq.XX(a, b) ** t[8],
        *tfq_rotations(a, t[9:12]),
        *tfq_rotations(b, t[12:15]),
    ]


def tfq_conv(bits, t):
    ops = []
    for a, b in zip(bits[0::2], bits[1::2]):
        ops += tfq_unit(a, b, t)
    for a, b in zip(bits[1::2], [*bits[2::2], bits[0]]):
        ops += tfq_unit(a, b, t)
    return ops


def tfq_pool(sources, sinks, t):
    ops = []
    for source, sink in zip(sources, sinks):
        selector = tfq_rotations(sink, t[0:3])
        ops += [*selector, *tfq_rotations(source, t[3:6]), cirq.CNOT(source, sink)]
        ops += cirq.inverse(selector)
    return ops


def tfq_cluster(bits):
    return [cirq.H.on_each(bits)] + [cirq.CZ(a, b) for a, b in zip(bits, [*bits[1:], bits[0]])]


def tfq_model(q, t):
    """The tutorial's 8-qubit model: 63 symbols, conv/pool down to q[7]."""
    return [
        *tfq_conv(q, t[0:15]),
        *tfq_pool(q[:4], q[4:], t[15:21]),
        *tfq_conv(q[4:], t[21:36]),
        *tfq_pool(q[4:6], q[6:], t[36:42]),
        *tfq_conv(q[6:], t[42:57]),
        *tfq_pool([q[6]], [q[7]], t[57:63]),
    ]


def cirq_state(ops, qubits):
    circuit = cirq.Circuit(ops)
    result = cirq.Simulator(dtype=np.complex128).simulate(circuit, qubit_order=qubits)
    return result.final_state_vector


def pl_state(n, body):
    @qml.qnode(qml.device("default.qubit", wires=n))
    def circuit():
        body()
        return qml.state()

    return circuit()


def assert_same_state_up_to_phase(got, want, atol=1e-10):
    overlap = np.vdot(got, want)
    assert abs(overlap) == pytest.approx(1.0, abs=atol)
    np.testing.assert_allclose(got * overlap, want, atol=1e-7)


# ------------------------------------------------------------------ against TFQ


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_cluster_state_is_tfqs(n):
    q = cirq.LineQubit.range(n)
    got = pl_state(n, lambda: ClusterState(range(n)))
    np.testing.assert_allclose(got, cirq_state(tfq_cluster(q), q), atol=1e-12)  # exact
    assert len(ClusterState(range(n)).decomposition()) == 2 * n + 2


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_convolution_is_tfqs_quantum_conv_circuit(n):
    q = cirq.LineQubit.range(n)
    w = rng.uniform(-np.pi, np.pi, 15)
    tilt = rng.uniform(0, 3, n)  # start away from a basis state

    def body():
        for i, angle in enumerate(tilt):
            qml.RY(angle, i)
        QCNNConvolution(w, range(n))

    start = [cirq.ry(angle)(bit) for angle, bit in zip(tilt, q)]
    assert_same_state_up_to_phase(pl_state(n, body), cirq_state(start + tfq_conv(q, w / np.pi), q))


def test_convolution_pairs_follow_tfq():
    assert convolution_pairs(range(8)) == [
        (0, 1),
        (2, 3),
        (4, 5),
        (6, 7),
        (1, 2),
        (3, 4),
        (5, 6),
        (7, 0),
    ]
    assert convolution_pairs("ab") == [("a", "b"), ("b", "a")]


def test_pooling_is_tfqs_quantum_pool_circuit():
    q = cirq.LineQubit.range(5)
    w = rng.uniform(-np.pi, np.pi, 6)
    sources, sinks = [3, 0], [1, 4]  # any disjoint wires, in any order
    tilt = rng.uniform(0, 3, 5)

    def body():
        for i, angle in enumerate(tilt):
            qml.RX(angle, i)
        QCNNPooling(w, sources, sinks)

    start = [cirq.rx(angle)(bit) for angle, bit in zip(tilt, q)]
    want = cirq_state(start + tfq_pool([q[3], q[0]], [q[1], q[4]], w / np.pi), q)
    assert_same_state_up_to_phase(pl_state(5, body), want)
    op = QCNNPooling(w, sources, sinks)
    assert op.source_wires.tolist() == sources and op.sink_wires.tolist() == sinks


def test_qcnn_is_tfqs_model_circuit_with_the_63_symbols_in_order():
    q = cirq.LineQubit.range(8)
    symbols = rng.uniform(-1, 1, 63)  # TFQ's qconv0..qconv62
    weights = np.pi * symbols.reshape(QCNN.shape(8))
    excitation = 0.9

    def body():
        ClusterState(range(8))
        qml.RX(excitation, 5)
        QCNN(weights, range(8))

    got = pl_state(8, body)
    data = [*tfq_cluster(q), cirq.rx(excitation)(q[5])]
    want = cirq_state(data + tfq_model(q, symbols), q)
    assert_same_state_up_to_phase(got, want)
    # the tutorial reads Z on its last qubit: the same expectation value here
    readout = QCNN.readout_wire(range(8))
    assert readout == 7
    p7 = np.sum(np.abs(want.reshape((2,) * 8)) ** 2, axis=tuple(range(7)))
    dev = qml.device("default.qubit", wires=8)
    expval = qml.QNode(lambda: [body(), qml.expval(qml.Z(readout))][1], dev)()
    assert expval == pytest.approx(p7[0] - p7[1], abs=1e-10)


# -------------------------------------------------------- shapes, gates, broadcasting


def test_shape_and_readout_helpers():
    assert [QCNN.shape(n) for n in (2, 4, 8, 16)] == [(1, 21), (2, 21), (3, 21), (4, 21)]
    assert QCNN.readout_wire(["a", "b", "c", "d"]) == "d"


def test_decompositions_use_portable_gates_only():
    w = rng.normal(size=QCNN.shape(8))
    ops = [ClusterState(range(8)), QCNN(w, range(8)), QCNN(rng.normal(size=(2, 1, 21)), [0, 1])]
    tape = qml.tape.QuantumScript(ops)
    [decomposed], _ = qml.transforms.decompose(tape, gate_set=PORTABLE_GATES)
    names = {op.name for op in decomposed.operations}
    assert names == {"Hadamard", "CNOT", "RX", "RY", "RZ", "IsingXX", "IsingYY", "IsingZZ"}
    assert len(decomposed.operations) == sum(len(op.decomposition()) for op in ops)  # one level


def test_qcnn_broadcasts_over_weights():
    w = rng.normal(size=(3, *QCNN.shape(4)))

    @qml.qnode(qml.device("default.qubit", wires=4))
    def circuit(weights):
        ClusterState(range(4))
        QCNN(weights, range(4))
        return qml.expval(qml.Z(3))

    batched = circuit(w)
    assert batched.shape == (3,)
    np.testing.assert_allclose(batched, [circuit(v) for v in w], atol=1e-12)


def test_blocks_broadcast_over_weights():
    conv, pool = rng.normal(size=(2, 15)), rng.normal(size=(2, 6))

    @qml.qnode(qml.device("default.qubit", wires=4))
    def circuit(c, p):
        qml.Hadamard(0)
        qml.RY(0.4, 2)
        QCNNConvolution(c, range(4))
        QCNNPooling(p, [0, 1], [2, 3])
        return qml.probs(wires=[2, 3])

    np.testing.assert_allclose(circuit(conv, pool), [circuit(conv[i], pool[i]) for i in range(2)])


# ------------------------------------------------------------------------ gradients


def test_qcnn_gradient_matches_finite_differences():
    @qml.qnode(qml.device("default.qubit", wires=4))
    def circuit(weights):
        ClusterState(range(4))
        qml.RX(1.1, 2)
        QCNN(weights, range(4))
        return qml.expval(qml.Z(3))

    w = rng.normal(size=QCNN.shape(4))
    grad = qml.grad(circuit)(pnp.array(w, requires_grad=True))
    assert np.abs(grad).max() > 1e-3  # a gradient that could be wrong
    h = 1e-6
    for _ in range(3):
        v = rng.normal(size=w.shape)
        fd = (circuit(pnp.array(w + h * v)) - circuit(pnp.array(w - h * v))) / (2 * h)
        assert np.sum(grad * v) == pytest.approx(fd, abs=1e-7)


def test_qcnn_gradient_through_the_router_matches_default_qubit():
    def circuit(weights):
        ClusterState(range(4))
        QCNN(weights, range(4))
        return qml.expval(qml.Z(3))

    w = pnp.array(rng.normal(size=QCNN.shape(4)), requires_grad=True)
    want = qml.grad(qml.QNode(circuit, qml.device("default.qubit", wires=4)))(w)
    got = qml.grad(qml.QNode(circuit, qml.device("qstore.router", wires=4)))(w)
    np.testing.assert_allclose(got, want, atol=1e-5)  # a complex64 backend may run it


# ------------------------------------------------------------------- other backends


def test_runs_on_the_router():
    w = rng.normal(size=(2, *QCNN.shape(4)))

    def circuit(weights):
        ClusterState(range(4))
        QCNN(weights, range(4))
        return qml.expval(qml.Z(QCNN.readout_wire(range(4))))

    got = qml.QNode(circuit, qml.device("qstore.router", wires=4))(w)
    want = qml.QNode(circuit, qml.device("default.qubit", wires=4))(w)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize(
    "gateset, sent",
    [
        ("qis", {"h", "cnot", "rx", "ry", "rz", "xx", "yy", "zz"}),
        ("native", {"gpi", "gpi2", "ms"}),
    ],
)
def test_runs_on_ionq_through_the_router(emulator, tmp_path, gateset, sent):
    w = rng.normal(size=QCNN.shape(4))

    def circuit():
        ClusterState(range(4))
        qml.RX(0.7, 1)
        QCNN(w, range(4))
        return qml.probs(wires=[3])

    dev = qml.device(
        "qstore.router",
        wires=4,
        router_config=config(tmp_path, ionq("sim", options={"gateset": gateset})),
    )
    got = qml.QNode(circuit, dev, shots=500)()
    want = qml.QNode(circuit, qml.device("default.qubit"))()
    np.testing.assert_allclose(got, want, atol=1e-10)  # IonQ's simulator target is exact
    [job] = emulator.jobs.values()
    assert {g["gate"] for g in job.payload["input"]["circuit"]} <= sent


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ClusterState([0]), "at least 2 wires"),
        (lambda: QCNNConvolution(np.zeros(15), [0]), "at least 2 wires"),
        (lambda: QCNNConvolution(np.zeros(14), [0, 1]), r"shape \(15,\) or \(batch, 15\)"),
        (lambda: QCNNConvolution(np.zeros((1, 1, 15)), [0, 1]), "15 symbols"),
        (lambda: QCNNConvolution(np.full(15, np.nan), [0, 1]), "15 NaN"),
        (lambda: QCNNPooling(np.zeros(6), [0, 1], [2]), "2 sources and 1 sinks"),
        (lambda: QCNNPooling(np.zeros(6), [], []), "at least one"),
        (lambda: QCNNPooling(np.zeros(6), [0, 1], [1, 2]), r"wires \[1\] are both"),
        (lambda: QCNNPooling(np.zeros(5), [0], [1]), r"shape \(6,\)"),
        (lambda: QCNN(np.zeros((2, 21)), range(6)), "pad the register to 8 wires"),
        (lambda: QCNN(np.zeros((1, 21)), [0]), "to 2 wires"),
        (lambda: QCNN(np.zeros((3, 21)), range(4)), r"shape \(2, 21\)"),
        (lambda: QCNN(np.zeros(42), range(4)), "see QCNN.shape"),
        (lambda: QCNN([[np.inf] * 21], range(2)), "1 NaN or infinite"),
        (lambda: QCNN.shape(0), "2\\*\\*k wires"),
    ],
)
def test_bad_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_operators_are_valid_pennylane_operators():
    w = rng.normal(size=QCNN.shape(4))
    for op in (
        ClusterState(range(3)),
        QCNNConvolution(w[0, :15], range(3)),
        QCNNPooling(w[0, 15:], [0, 1], [2, 3]),
        QCNN(w, range(4)),
    ):
        # capture needs another jax; QCNN's gradients are checked above (42 angles: slow here)
        slow = isinstance(op, (QCNN, QCNNConvolution))
        qml.ops.functions.assert_valid(op, skip_capture=True, skip_differentiation=slow)


def test_qcnn_records_with_symbols_and_binds_to_the_same_circuit():
    """Templates accept symbol placeholders (circuits as data) and check them once bound."""
    from qstore_pl.circuits import ParametrizedCircuit

    wires = list(range(4))
    recorded = ParametrizedCircuit.from_function(lambda w: QCNN(w, wires), w=QCNN.shape(4))
    weights = np.random.default_rng(11).uniform(0, 2 * np.pi, QCNN.shape(4))
    bound = recorded.bind(w=weights)
    direct = qml.tape.QuantumScript([QCNN(weights, wires)])
    np.testing.assert_allclose(
        qml.matrix(bound, wire_order=wires), qml.matrix(direct, wire_order=wires), atol=1e-12
    )
    with pytest.raises(ValueError, match="NaN"):
        recorded.bind(w=np.full(QCNN.shape(4), np.nan))
