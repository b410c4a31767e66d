"""AngleEncoding, AmplitudeEncoding, DataReuploading: states against analytic values and
hand-written circuits, broadcasting, gate sets, gradients and bad input."""

import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, ionq
from pennylane import numpy as pnp

from qstore_pl.templates import (
    PORTABLE_GATES,
    AmplitudeEncoding,
    AngleEncoding,
    DataReuploading,
    HardwareEfficientAnsatz,
)
from qstore_pl.templates.encodings import uniformly_controlled_rotation

emulator = pytest.fixture(emulator_server, name="emulator")
rng = np.random.default_rng(5)


def gate_names(op):
    """Names of the gates ``op`` fully decomposes to."""
    [tape], _ = qml.transforms.decompose(qml.tape.QuantumScript([op]), gate_set=PORTABLE_GATES)
    return {g.name for g in tape.operations}


def state_of(template, n, *args, **kwargs):
    @qml.qnode(qml.device("default.qubit", wires=n))
    def circuit():
        template(*args, wires=range(n), **kwargs)
        return qml.state()

    return circuit()


def directional_check(f, x, atol, h=1e-6, directions=3):
    """grad(f)(x) . v equals the central difference of f along a few random v."""
    g = qml.grad(f)(pnp.array(x, requires_grad=True))
    for _ in range(directions):
        v = rng.normal(size=np.shape(x))
        fd = (f(pnp.array(x + h * v)) - f(pnp.array(x - h * v))) / (2 * h)
        assert np.sum(g * v) == pytest.approx(fd, abs=atol)


# ------------------------------------------------------------------- the gate set


def test_portable_gates_run_natively_on_every_backend():
    from qstore_pl.devices.ionq.device import QIS_GATES
    from qstore_pl.router.config import BackendConfig
    from qstore_pl.router.registry.builtin import KNOWN_BACKENDS, build_spec, is_usable

    assert PORTABLE_GATES <= QIS_GATES
    checked = []
    for kind in KNOWN_BACKENDS:
        if kind == "ionq" or not is_usable(kind):
            continue
        operations = build_spec(BackendConfig(kind, kind)).capabilities.operations
        if operations is None:  # default.qubit: any gate with a matrix
            assert all(getattr(qml, name).has_matrix for name in PORTABLE_GATES)
        else:
            assert PORTABLE_GATES <= operations, kind
        checked.append(kind)
    assert {"lightning.qubit", "qstore.qsim", "qstore.batched", "default.qubit"} <= set(checked)


@pytest.mark.parametrize(
    "op, gates",
    [
        (AngleEncoding([0.1, 0.2], wires=[0, 1, 2], rotation="XYZ"), {"RX", "RY", "RZ"}),
        (AmplitudeEncoding(rng.normal(size=7), wires=range(3)), {"RY", "CNOT"}),
        (AmplitudeEncoding(rng.normal(size=(2, 5)), wires=range(3)), {"RY", "CNOT"}),
        (AmplitudeEncoding(rng.normal(size=6) + 1j, wires=range(3)), {"RY", "RZ", "CNOT"}),
        (DataReuploading([0.1], np.ones((2, 2, 2)), wires=[0, 1]), {"RX", "RY", "RZ", "CNOT"}),
    ],
)
def test_decompositions_use_portable_gates_only(op, gates):
    assert gate_names(op) == gates
    assert {g.name for g in op.decomposition()} == gates  # one level suffices


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_amplitude_encoding_gate_counts(n):
    ops = AmplitudeEncoding(rng.normal(size=2**n), wires=range(n)).decomposition()
    names = [op.name for op in ops]
    assert (names.count("RY"), names.count("CNOT"), len(names)) == (
        2**n - 1,
        2**n - 2,
        2 ** (n + 1) - 3,
    )


def test_operators_are_valid_pennylane_operators():
    for op in (
        AngleEncoding(rng.normal(size=2), [0, 1, 2], rotation="XY", scaling=0.5),
        AmplitudeEncoding(rng.normal(size=3), [0, 1]),
        AmplitudeEncoding(rng.normal(size=4) + 1j, [0, 1]),
        DataReuploading(rng.normal(size=2), rng.normal(size=(2, 2, 2)), [0, 1]),
    ):
        qml.ops.functions.assert_valid(op, skip_capture=True)  # capture needs another jax
    for op in (  # broadcast: PennyLane's parameter-shift check refuses broadcast tapes
        AngleEncoding(rng.normal(size=(3, 2)), [0, 1]),
        AmplitudeEncoding(rng.normal(size=(3, 4)), [0, 1]),
        DataReuploading(rng.normal(size=(3, 2)), rng.normal(size=(3, 1, 2, 2)), [0, 1]),
    ):
        qml.ops.functions.assert_valid(op, skip_capture=True, skip_differentiation=True)


# ---------------------------------------------------------------- AngleEncoding


def test_angle_encoding_expectations_are_cosines_and_sines():
    x, s = np.array([0.3, -1.2, 2.0]), 0.7
    dev = qml.device("default.qubit", wires=4)

    @qml.qnode(dev)
    def circuit(rotation):
        AngleEncoding(x, wires=range(4), rotation=rotation, scaling=s)
        zs = [qml.expval(qml.Z(i)) for i in range(4)]
        return [*zs, qml.expval(qml.X(0)), qml.expval(qml.Y(1))]

    z, xy = np.array(circuit("Y")[:4]), circuit("Y")[4:]
    np.testing.assert_allclose(z, [*np.cos(s * x), 1.0], atol=1e-12)  # wire 3 untouched
    np.testing.assert_allclose(xy, [np.sin(s * x[0]), 0.0], atol=1e-12)
    out = circuit("X")
    np.testing.assert_allclose(out[:3], np.cos(s * x), atol=1e-12)
    assert out[5] == pytest.approx(-np.sin(s * x[1]), abs=1e-12)  # RX: <Y> = -sin
    np.testing.assert_allclose(circuit("Z")[:4], 1.0, atol=1e-12)  # RZ on |0> does nothing


def test_several_axes_are_applied_in_order():
    x = np.array([0.4, 1.1])

    @qml.qnode(qml.device("default.qubit", wires=2))
    def by_hand():
        for i in range(2):
            qml.RX(x[i], i)
        for i in range(2):
            qml.RZ(x[i], i)
        return qml.state()

    np.testing.assert_allclose(state_of(AngleEncoding, 2, x, rotation="XZ"), by_hand(), atol=1e-12)
    for spelling in (["RX", "RZ"], ("x", "z"), "xz"):
        assert AngleEncoding(x, [0, 1], rotation=spelling).hyperparameters["rotation"] == ("X", "Z")
    assert AngleEncoding(x, [0, 1], rotation="RY").hyperparameters["rotation"] == ("Y",)


def test_angle_encoding_broadcasts():
    x = rng.uniform(-np.pi, np.pi, (5, 3))

    @qml.qnode(qml.device("default.qubit", wires=3))
    def circuit(features):
        AngleEncoding(features, wires=range(3), rotation="XY", scaling=0.5)
        return qml.expval(qml.Z(0) @ qml.Z(2)), qml.expval(qml.Y(1))

    batched = np.array(circuit(x))
    assert batched.shape == (2, 5)
    np.testing.assert_allclose(batched.T, [circuit(row) for row in x], atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"features": np.zeros(4), "wires": [0, 1, 2]}, "4 features do not fit on 3 wires"),
        ({"features": np.zeros((2, 2, 2)), "wires": [0, 1]}, r"shape \(n_features,\)"),
        ({"features": np.zeros((3, 0)), "wires": [0, 1]}, "got shape"),
        ({"features": [0.1, np.nan], "wires": [0, 1]}, "1 NaN or infinite"),
        ({"features": [0.1, np.inf], "wires": [0, 1]}, "nan_to_num"),
        ({"features": [0.1j], "wires": [0]}, "real angles"),
        ({"features": [0.1], "wires": [0], "rotation": "W"}, "axis letters from 'XYZ'"),
        ({"features": [0.1], "wires": [0], "rotation": ""}, "axis letters"),
        ({"features": [0.1], "wires": [0], "scaling": float("nan")}, "scaling must be finite"),
        ({"features": [0.1], "wires": [0], "scaling": "big"}, "scaling must be a real number"),
    ],
)
def test_angle_encoding_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AngleEncoding(**kwargs)


def test_angle_encoding_gradient_matches_finite_differences():
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def circuit(x):
        AngleEncoding(x, wires=range(3), rotation="YZ", scaling=1.3)
        qml.CNOT([0, 1])
        qml.CNOT([1, 2])
        return qml.expval(qml.X(0) @ qml.Z(2) + 0.5 * qml.Y(1))

    directional_check(circuit, rng.normal(size=3), atol=1e-7)


# ------------------------------------------------------------ AmplitudeEncoding


@pytest.mark.parametrize("n_features", [1, 2, 3, 4, 5, 8, 13, 16])
def test_real_amplitudes_are_the_normalised_padded_vector(n_features):
    n = AmplitudeEncoding.n_wires_for(n_features)
    x = rng.normal(size=n_features)
    want = np.zeros(2**n)
    want[:n_features] = x
    want /= np.linalg.norm(want)
    np.testing.assert_allclose(state_of(AmplitudeEncoding, n, x), want, atol=1e-12)  # no phase


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_complex_amplitudes_match_up_to_a_global_phase(n):
    x = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    x[1] = 0  # a zero amplitude has no phase to prepare
    got = state_of(AmplitudeEncoding, n, x)
    want = x / np.linalg.norm(x)
    phase = np.vdot(got, want)
    assert abs(phase) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(got * phase, want, atol=1e-12)


def test_pad_with_and_already_normalised_features():
    got = state_of(AmplitudeEncoding, 2, [1.0, 2.0, 3.0], pad_with=-1.0)
    np.testing.assert_allclose(got, np.array([1, 2, 3, -1]) / np.sqrt(15), atol=1e-12)
    unit = np.array([0.6, 0.0, 0.0, -0.8])
    got = state_of(AmplitudeEncoding, 2, unit, normalize=False)
    np.testing.assert_allclose(got, unit, atol=1e-12)
    f32 = (unit + 1e-7).astype(np.float32)  # float32 rounding is tolerated
    assert AmplitudeEncoding(f32, wires=[0, 1], normalize=False).batch_size is None


def test_amplitude_encoding_broadcasts():
    x = rng.normal(size=(4, 6))

    @qml.qnode(qml.device("default.qubit", wires=3))
    def circuit(features):
        AmplitudeEncoding(features, wires=range(3))
        return qml.state()

    batched = circuit(x)
    assert batched.shape == (4, 8)
    np.testing.assert_allclose(batched, [circuit(row) for row in x], atol=1e-12)


def test_uniformly_controlled_rotation_is_the_multiplexed_gate():
    alphas = rng.uniform(-np.pi, np.pi, 8)
    for gate in (qml.RY, qml.RZ):
        ops = uniformly_controlled_rotation(gate, alphas, controls=["a", "b", "c"], target="t")
        got = qml.matrix(qml.prod(*reversed(ops)), wire_order=["a", "b", "c", "t"])
        want = np.zeros((16, 16), dtype=complex)
        for j, alpha in enumerate(alphas):  # control state j, "a" most significant
            want[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = qml.matrix(gate(alpha, 0))
        np.testing.assert_allclose(got, want, atol=1e-12)
        assert [op.name for op in ops].count("CNOT") == 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"features": np.ones(5), "wires": [0, 1]}, r"n_wires_for\(5\) = 3 wires"),
        ({"features": np.zeros(4), "wires": [0, 1]}, "all zeros after padding"),
        ({"features": [[1, 0], [0, 0]], "wires": [0]}, r"all zeros \(batch entries \[1\]\)"),
        ({"features": [1.0, 1.0], "wires": [0], "normalize": False}, "norm 1.41421, not 1"),
        ({"features": [1.0, 0.0, 0.0], "wires": [0, 1], "pad_with": None}, "pad_with=None"),
        ({"features": [1.0, np.nan], "wires": [0]}, "NaN"),
        ({"features": [1.0], "wires": [0, 1], "pad_with": np.nan}, "pad_with contains"),
        ({"features": np.ones((2, 2, 2)), "wires": [0, 1, 2]}, r"got shape \(2, 2, 2\)"),
        ({"features": 1.0, "wires": [0]}, r"got shape \(\)"),
    ],
)
def test_amplitude_encoding_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AmplitudeEncoding(**kwargs)


def test_n_wires_for():
    assert [AmplitudeEncoding.n_wires_for(k) for k in (1, 2, 3, 4, 5, 64, 65)] == [
        1,
        1,
        2,
        2,
        3,
        6,
        7,
    ]
    with pytest.raises(ValueError, match="at least 1"):
        AmplitudeEncoding.n_wires_for(0)


def test_amplitude_encoding_gradient_is_finite_with_padding():
    # 5 features on 3 wires: three padded zeros, two all-zero blocks in the RY tree
    @qml.qnode(qml.device("default.qubit", wires=3))
    def circuit(x):
        AmplitudeEncoding(x, wires=range(3))
        return qml.expval(qml.X(0) @ qml.Z(1) + 0.3 * qml.X(2) + qml.Z(0))

    directional_check(circuit, rng.normal(size=5), atol=1e-6)


def test_amplitude_encoding_gradient_in_torch():
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(3, 3))

    @qml.qnode(qml.device("default.qubit", wires=2), interface="torch")
    def circuit(features):
        AmplitudeEncoding(features, wires=[0, 1])
        return qml.expval(qml.X(0) @ qml.Z(1))

    xt = torch.tensor(x, requires_grad=True)
    circuit(xt).sum().backward()
    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd[idx] = (
            circuit(torch.tensor(x + e)).sum().item() - circuit(torch.tensor(x - e)).sum().item()
        ) / (2 * h)
    np.testing.assert_allclose(xt.grad.numpy(), fd, atol=1e-7)


def test_amplitude_encoding_in_tensorflow():
    # the framework ops of the encoding (where, arctan2, tensordot) in TensorFlow
    tf = pytest.importorskip("tensorflow")
    x = rng.normal(size=(2, 6))

    @qml.qnode(qml.device("default.qubit", wires=3), interface="tf")
    def circuit(features):
        AmplitudeEncoding(features, wires=range(3))
        return qml.expval(qml.X(0) @ qml.Z(2))

    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(circuit(xt))
    reference = qml.QNode(circuit.func, qml.device("default.qubit", wires=3))
    want = qml.grad(lambda f: pnp.sum(reference(f)))(pnp.array(x, requires_grad=True))
    assert float(total) == pytest.approx(np.sum(reference(x)), abs=1e-12)
    np.testing.assert_allclose(tape.gradient(total, xt).numpy(), want, atol=1e-12)


def test_encodings_under_jax_jit():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @jax.jit
    @qml.qnode(qml.device("default.qubit", wires=2))
    def circuit(x):
        AmplitudeEncoding(x, wires=[0, 1])
        AngleEncoding(x[:2], wires=[0, 1], rotation="X")
        return qml.expval(qml.Z(0))

    x = np.array([0.3, -0.4, 0.5], dtype=np.float32)  # jax's default float32
    reference = qml.QNode(circuit.__wrapped__.func, qml.device("default.qubit", wires=2))
    assert float(circuit(jnp.asarray(x))) == pytest.approx(reference(x), abs=1e-5)
    g = jax.grad(circuit)(jnp.asarray(x))
    assert np.all(np.isfinite(np.asarray(g)))


# --------------------------------------------------------------- DataReuploading


def test_reuploading_is_encoding_then_ansatz_layer_by_layer():
    n, layers = 3, 2
    x = rng.normal(size=2)
    w = rng.uniform(-np.pi, np.pi, DataReuploading.shape(layers, n))

    @qml.qnode(qml.device("default.qubit", wires=n))
    def template():
        DataReuploading(x, w, wires=range(n), scaling=2.0)
        return qml.state()

    @qml.qnode(qml.device("default.qubit", wires=n))
    def by_hand():
        for layer in range(layers):
            qml.RX(2.0 * x[0], 0)
            qml.RX(2.0 * x[1], 1)
            for i in range(n):
                qml.RY(w[layer, i, 0], i)
                qml.RZ(w[layer, i, 1], i)
            qml.CNOT([0, 1])
            qml.CNOT([1, 2])
            qml.CNOT([2, 0])
        return qml.state()

    np.testing.assert_allclose(template(), by_hand(), atol=1e-12)


def test_reuploading_options_and_shape():
    assert DataReuploading.shape(3, 4) == HardwareEfficientAnsatz.shape(3, 4) == (3, 4, 2)
    assert DataReuploading.shape(1, 2, rotations=["RX"]) == (1, 2, 1)
    w = np.zeros(DataReuploading.shape(2, 2, ["RX"]))
    op = DataReuploading([0.5, 0.6], w, [0, 1], ["RX"], "linear", encoding="YZ")
    names = [g.name for g in op.decomposition()]
    assert names == ["RY", "RY", "RZ", "RZ", "RX", "RX", "CNOT"] * 2


@pytest.mark.parametrize("batch_x, batch_w", [(True, False), (False, True), (True, True)])
def test_reuploading_broadcasts_features_weights_or_both(batch_x, batch_w):
    n, b = 2, 3
    x = rng.normal(size=(b, n) if batch_x else n)
    w = rng.normal(size=(b, 2, n, 2) if batch_w else (2, n, 2))

    @qml.qnode(qml.device("default.qubit", wires=n))
    def circuit(features, weights):
        DataReuploading(features, weights, wires=range(n))
        return qml.expval(qml.Z(0) @ qml.X(1))

    batched = circuit(x, w)
    assert batched.shape == (b,)
    singles = [circuit(x[i] if batch_x else x, w[i] if batch_w else w) for i in range(b)]
    np.testing.assert_allclose(batched, singles, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": np.zeros((2, 3, 2))}, r"shape \(n_layers, 2, 2\)"),
        ({"weights": np.zeros((0, 2, 2))}, "n_layers"),
        ({"weights": np.zeros((2, 2))}, "DataReuploading.shape"),
        ({"features": np.zeros(3)}, "3 features do not fit on 2 wires"),
        ({"features": np.zeros((4, 2)), "weights": np.zeros((3, 1, 2, 2))}, "batch size 4"),
        ({"weights": np.full((1, 2, 2), np.nan)}, "weights contains 4 NaN"),
        ({"rotations": ["RW"]}, "rotations must be names"),
        ({"entanglement": "star"}, "star"),
        ({"encoding": "Q"}, "axis letters"),
    ],
)
def test_reuploading_bad_input(kwargs, message):
    args = {"features": np.zeros(2), "weights": np.zeros((1, 2, 2)), "wires": [0, 1], **kwargs}
    with pytest.raises(ValueError, match=message):
        DataReuploading(**args)


def test_reuploading_gradient_matches_finite_differences():
    n = 3
    x = rng.normal(size=n)
    w = rng.normal(size=DataReuploading.shape(2, n))

    @qml.qnode(qml.device("default.qubit", wires=n))
    def circuit(features, weights):
        DataReuploading(features, weights, wires=range(n), scaling=0.8)
        return qml.expval(qml.Z(0) @ qml.Z(1) + qml.X(2))

    directional_check(lambda f: circuit(f, w), x, atol=1e-7)
    directional_check(lambda v: circuit(x, v), w, atol=1e-7)


def test_reuploading_runs_on_the_router():
    n = 3
    x = rng.normal(size=(4, n))
    w = rng.normal(size=DataReuploading.shape(2, n))

    def circuit(features):
        DataReuploading(features, w, wires=range(n))
        return qml.expval(qml.Z(0))

    got = qml.QNode(circuit, qml.device("qstore.router", wires=n))(x)
    want = qml.QNode(circuit, qml.device("default.qubit", wires=n))(x)
    np.testing.assert_allclose(got, want, atol=1e-5)  # a complex64 backend may run it


# ------------------------------------------------------------------- other backends


def test_encodings_run_batched_on_the_router():
    x = rng.normal(size=(5, 6))

    def circuit(features):
        AmplitudeEncoding(features, wires=range(3))
        AngleEncoding(features[..., :3], wires=range(3), rotation="Z")
        return qml.expval(qml.X(0) @ qml.Z(2)), qml.probs(wires=[1])

    got = qml.QNode(circuit, qml.device("qstore.router", wires=3))(x)
    want = qml.QNode(circuit, qml.device("default.qubit", wires=3))(x)
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)  # a complex64 backend may run it
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)


@pytest.mark.parametrize(
    "gateset, sent", [("qis", {"ry", "rx", "rz", "cnot"}), ("native", {"gpi", "gpi2", "ms"})]
)
def test_encodings_run_on_ionq_through_the_router(emulator, tmp_path, gateset, sent):
    x = rng.normal(size=7)
    w = rng.normal(size=DataReuploading.shape(1, 3))

    def circuit():
        AmplitudeEncoding(x, wires=range(3))
        DataReuploading(x[:3], w, wires=range(3))
        return qml.probs(wires=[0, 2])

    backend = ionq("sim", options={"gateset": gateset})
    dev = qml.device("qstore.router", wires=3, router_config=config(tmp_path, backend))
    got = qml.QNode(circuit, dev, shots=500)()
    want = qml.QNode(circuit, qml.device("default.qubit"))()
    np.testing.assert_allclose(got, want, atol=1e-10)  # IonQ's simulator target is exact
    [job] = emulator.jobs.values()
    assert {g["gate"] for g in job.payload["input"]["circuit"]} <= sent
