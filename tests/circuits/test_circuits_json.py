"""Exact JSON round trips of tapes (qstore_pl.circuits.json_format) and parametrized
circuits with Symbols (qstore_pl.circuits.parametrized)."""

from __future__ import annotations

import json

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane import numpy as pnp
from pennylane.operation import Operation
from pennylane.tape import QuantumScript

from qstore_pl.circuits import (
    FORMAT_VERSION,
    ParametrizedCircuit,
    Symbol,
    json_format,
    operator_from_dict,
    operator_to_dict,
    register_operator,
    symbol_array,
    tape_from_dict,
    tape_from_json,
    tape_to_dict,
    tape_to_json,
)

WIRES = [0, 1, 2, "a", "anc"]


def _unitary(rng, n: int, dtype=np.complex128) -> np.ndarray:
    z = rng.normal(size=(2**n, 2**n)) + 1j * rng.normal(size=(2**n, 2**n))
    q, r = np.linalg.qr(z)
    return (q * (np.diag(r) / np.abs(np.diag(r)))).astype(dtype)


def _hermitian(rng, n: int) -> np.ndarray:
    z = rng.normal(size=(2**n, 2**n)) + 1j * rng.normal(size=(2**n, 2**n))
    return z + z.conj().T


def _angle(rng):
    """An angle of a random type: Python float, numpy scalars, 0-d arrays, pnp tensors."""
    x = rng.normal()
    kind = rng.integers(5)
    if kind == 0:
        return float(x)
    if kind == 1:
        return np.float64(x)
    if kind == 2:
        return np.float32(x)
    if kind == 3:
        return np.array(x)
    return pnp.array(x, requires_grad=bool(rng.integers(2)))


def _random_op(rng):  # one operator drawn from primitives, arithmetic and templates
    w = [WIRES[i] for i in rng.permutation(len(WIRES))]
    a = lambda: _angle(rng)  # noqa: E731
    makers = [
        lambda: qml.RX(a(), w[0]),
        lambda: qml.RY(a(), w[0]),
        lambda: qml.RZ(a(), w[0]),
        lambda: qml.PhaseShift(a(), w[0]),
        lambda: qml.Rot(a(), a(), a(), wires=w[0]),
        lambda: qml.U3(a(), a(), a(), wires=w[0]),
        lambda: qml.Hadamard(w[0]),
        lambda: qml.S(w[0]),
        lambda: qml.SX(w[0]),
        lambda: qml.CNOT(w[:2]),
        lambda: qml.CZ(w[:2]),
        lambda: qml.SWAP(w[:2]),
        lambda: qml.Toffoli(w[:3]),
        lambda: qml.CRX(a(), w[:2]),
        lambda: qml.CRot(a(), a(), a(), wires=w[:2]),
        lambda: qml.IsingXX(a(), w[:2]),
        lambda: qml.ControlledPhaseShift(a(), w[:2]),
        lambda: qml.PauliRot(a(), "XZY", w[:3]),
        lambda: qml.MultiRZ(a(), w[:3]),
        lambda: qml.QubitUnitary(_unitary(rng, 1), w[0]),
        lambda: qml.QubitUnitary(_unitary(rng, 2, np.complex64), w[:2]),
        lambda: qml.DiagonalQubitUnitary(np.exp(1j * rng.normal(size=4)), w[:2]),
        lambda: qml.prod(qml.RX(a(), w[0]), qml.RY(a(), w[1])),
        lambda: qml.s_prod(a(), qml.PauliX(w[0])),
        lambda: qml.sum(qml.PauliX(w[0]), qml.s_prod(0.5, qml.PauliY(w[1]))),
        lambda: qml.adjoint(qml.RX(a(), w[0])),
        lambda: qml.adjoint(qml.S(w[0])),
        lambda: qml.ctrl(qml.RY(a(), w[0]), control=w[1]),
        lambda: qml.ctrl(qml.U3(a(), a(), a(), wires=w[0]), control=w[1:3], control_values=[0, 1]),
        lambda: qml.pow(qml.RX(a(), w[0]), 2),
        lambda: qml.StronglyEntanglingLayers(rng.normal(size=(2, 3, 3)), wires=w[:3]),
        lambda: qml.AngleEmbedding(rng.normal(size=2), wires=w[:2], rotation="Y"),
        lambda: qml.BasicEntanglerLayers(rng.normal(size=(1, 3)), wires=w[:3]),
        lambda: qml.QFT(wires=w[:3]),
    ]
    return makers[rng.integers(len(makers))]()


def _random_measurement(rng):
    w = [WIRES[i] for i in rng.permutation(len(WIRES))]
    makers = [
        lambda: qml.expval(qml.PauliZ(w[0])),
        lambda: qml.expval(qml.Hermitian(_hermitian(rng, 2), w[:2])),
        lambda: qml.var(qml.PauliX(w[0]) @ qml.PauliZ(w[1])),
        lambda: qml.expval(qml.Hamiltonian(rng.normal(size=2), [qml.Z(w[0]), qml.X(w[1])])),
        lambda: qml.probs(wires=w[:2]),
        lambda: qml.probs(op=qml.PauliY(w[0])),
        lambda: qml.sample(wires=w[:3]),
        lambda: qml.sample(qml.PauliX(w[0])),
        lambda: qml.counts(wires=w[:2], all_outcomes=True),
        lambda: qml.state(),
        lambda: qml.density_matrix(wires=w[:2]),
    ]
    return makers[rng.integers(len(makers))]()


def random_tape(seed: int) -> QuantumScript:
    rng = np.random.default_rng(seed)
    ops = [_random_op(rng) for _ in range(rng.integers(3, 12))]
    measurements = [_random_measurement(rng) for _ in range(rng.integers(1, 4))]
    shots = [None, 100, [(10, 2), 5]][rng.integers(3)]
    tape = QuantumScript(ops, measurements, shots=shots)
    n = tape.num_params
    tape.trainable_params = sorted(rng.choice(n, size=rng.integers(n + 1), replace=False).tolist())
    return tape


def assert_same_bits(a, b):
    """Same Python type, dtype, shape, trainability and bytes."""
    assert type(a) is type(b), (a, b)
    assert qml.math.requires_grad(a) == qml.math.requires_grad(b)
    x = np.asarray(qml.math.unwrap(a))
    y = np.asarray(qml.math.unwrap(b))
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes(), (a, b)


def assert_exact_round_trip(tape: QuantumScript, restored: QuantumScript):
    assert qml.equal(tape, restored)  # ops, measurements, shots, trainable_params
    assert [type(op) for op in tape.operations] == [type(op) for op in restored.operations]
    before = tape.get_parameters(trainable_only=False)
    after = restored.get_parameters(trainable_only=False)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert_same_bits(a, b)


@pytest.mark.parametrize("seed", range(12))
def test_random_circuits_round_trip_exactly(seed):
    tape = random_tape(seed)
    text = tape_to_json(tape)
    restored = tape_from_json(text)
    assert_exact_round_trip(tape, restored)
    assert tape_to_json(restored) == text  # and the text is stable


def test_text_is_strict_json_and_self_describing():
    tape = QuantumScript(
        [qml.RX(float("nan"), 0), qml.RY(float("inf"), 1), qml.RZ(-0.0, "a")],
        [qml.expval(qml.PauliZ(0))],
    )
    text = tape_to_json(tape)

    def reject(token):
        raise AssertionError(f"non-standard JSON token {token}")

    data = json.loads(text, parse_constant=reject)
    assert data["format"] == "qstore_pl.circuit" and data["version"] == FORMAT_VERSION
    assert data["operations"][0] == {"op": "RX", "wires": [0], "data": [{"$": "float", "v": "nan"}]}
    restored = tape_from_json(text)
    x, y, z = (op.data[0] for op in restored.operations)
    assert np.isnan(x) and y == float("inf") and str(z) == "-0.0"
    assert restored.operations[2].wires.labels == ("a",)


def test_parameter_types_and_dtypes_survive():
    u64 = _unitary(np.random.default_rng(3), 1, np.complex64)
    tape = QuantumScript(
        [
            qml.RX(0.1, 0),
            qml.RY(np.float32(0.2), 0),
            qml.RZ(np.array(0.3, dtype=np.float16), 0),
            qml.PhaseShift(2, 0),
            qml.QubitUnitary(u64, 1),
            qml.RX(pnp.array(0.4, requires_grad=True), 1),
            qml.RY(pnp.array(0.5, requires_grad=False), 1),
            qml.RZ(np.array([0.1, 0.2, 0.3]), 2),  # broadcast parameter
            qml.BasisState(np.array([1, 0], dtype=np.int8), wires=[3, 4]),
        ],
        [qml.expval(qml.PauliZ(0))],
    )
    restored = tape_from_dict(json.loads(tape_to_json(tape)))
    assert_exact_round_trip(tape, restored)
    assert restored.batch_size == 3
    assert restored.operations[4].data[0].dtype == np.complex64


def test_torch_parameters_come_back_as_torch_tensors():
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    tape = QuantumScript([qml.RX(theta, 0)], [qml.expval(qml.PauliZ(0))])
    restored = tape_from_json(tape_to_json(tape))
    value = restored.operations[0].data[0]
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    assert value.requires_grad and value.item() == 0.7


def test_shots_and_trainable_params_are_kept():
    tape = QuantumScript(
        [qml.RX(0.1, 0), qml.Rot(0.2, 0.3, 0.4, 1)],
        [qml.expval(qml.Hermitian(np.diag([1.0, -1.0]), 0)), qml.counts(wires=[0, 1])],
        shots=[(100, 3), 7],
        trainable_params=[1, 3, 4],
    )
    d = tape_to_dict(tape)
    assert d["shots"] == [[100, 3], [7, 1]]
    assert d["trainable_params"] == [1, 3, 4]
    restored = tape_from_dict(d)
    assert restored.shots == tape.shots and restored.trainable_params == [1, 3, 4]


def test_round_trip_gives_the_same_results_on_default_qubit():
    rng = np.random.default_rng(7)
    tape = QuantumScript(
        [
            qml.StronglyEntanglingLayers(rng.normal(size=(2, 3, 3)), wires=[0, 1, 2]),
            qml.ctrl(qml.U3(0.1, 0.2, 0.3, wires=0), control=[1, 2], control_values=[1, 0]),
            qml.adjoint(qml.prod(qml.RX(0.4, 1), qml.RY(0.5, 2))),
            qml.QubitUnitary(_unitary(rng, 2), wires=[2, 0]),
        ],
        [
            qml.expval(qml.Hermitian(_hermitian(rng, 2), [0, 2])),
            qml.probs(wires=[1, 2]),
            qml.var(qml.PauliX(0) @ qml.PauliY(1)),
        ],
    )
    dev = qml.device("default.qubit")
    (expected,) = qml.execute([tape], dev)
    (got,) = qml.execute([tape_from_json(tape_to_json(tape))], dev)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)


class _Kernel(Operation):
    """A test operator whose hyperparameter (a Python function) has no JSON form."""

    num_wires = 1
    num_params = 1

    def __init__(self, theta, wires, fn=None, id=None):
        self._hyperparameters = {"fn": fn}
        super().__init__(theta, wires=wires, id=id)

    @staticmethod
    def compute_decomposition(theta, wires, fn):
        return [qml.RX(fn(theta), wires), qml.RY(theta, wires), qml.Hadamard(wires)]


def test_unserialisable_operator_names_itself_and_decomposes_on_request():
    tape = QuantumScript(
        [qml.RY(0.1, 0), _Kernel(0.3, wires=1, fn=lambda t: 2 * t), qml.RZ(0.5, 1)],
        [qml.expval(qml.PauliZ(1)), qml.expval(qml.Hermitian(np.eye(2), 0))],
        trainable_params=[1, 3],
    )
    with pytest.raises(ValueError, match=r"_Kernel.*operations\[1\].*decompose=True"):
        tape_to_json(tape)
    restored = tape_from_json(tape_to_json(tape, decompose=True))
    assert [op.name for op in restored.operations] == ["RY", "RX", "RY", "Hadamard", "RZ"]
    assert restored.operations[1].data[0] == 0.6
    # the Kernel's parameter was trainable, so both of its rotations are; the
    # Hermitian's matrix (index 3) moves to index 4
    assert restored.trainable_params == [1, 2, 4]
    dev = qml.device("default.qubit")
    np.testing.assert_allclose(
        qml.execute([restored], dev)[0], qml.execute([tape], dev)[0], atol=1e-12
    )


class _Plain(Operation):
    """An operator defined outside PennyLane with JSON-able hyperparameters."""

    num_wires = 1
    num_params = 1

    def __init__(self, theta, wires, axis="X", id=None):
        self._hyperparameters = {"axis": axis}
        super().__init__(theta, wires=wires, id=id)


def test_operators_outside_pennylane_load_only_when_registered(monkeypatch):
    monkeypatch.setattr(json_format, "_REGISTERED", {})
    d = operator_to_dict(_Plain(0.25, wires="q", axis="Y"))
    assert d["op"] == f"{__name__}:_Plain"
    with pytest.raises(ValueError, match="register_operator"):
        operator_from_dict(d)
    register_operator(_Plain)
    op = operator_from_dict(d)
    assert isinstance(op, _Plain) and op.hyperparameters == {"axis": "Y"} and op.data == (0.25,)


def test_mid_circuit_measurement_values_are_refused():
    m = qml.measure(0)
    tape = QuantumScript([*m.measurements], [qml.expval(m)])
    with pytest.raises(ValueError, match=r"measurements\[0\].*mid-circuit"):
        tape_to_json(tape)


def _valid() -> dict:
    return tape_to_dict(
        QuantumScript([qml.RX(0.5, 0), qml.QubitUnitary(np.eye(2), 1)], [qml.expval(qml.Z(0))])
    )


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(version=FORMAT_VERSION + 1), "newer than this qstore_pl reads"),
        (lambda d: d.update(version="1"), "positive int"),
        (lambda d: d.update(format="other"), "not a 'qstore_pl.circuit' object"),
        (lambda d: d["operations"][0].update(op="NoSuchGate"), "unknown operator 'NoSuchGate'"),
        (lambda d: d["measurements"][0].update(mp="NoSuchMP"), "unknown measurement"),
        (lambda d: d["operations"][0].update(op="os:system"), "outside PennyLane"),
        (lambda d: d["operations"][0].pop("wires"), r"operations\[0\] \(RX\): missing field"),
        (
            lambda d: d["operations"][0].update(data=[1, 2]),
            r"operations\[0\] \(RX\): cannot rebuild",
        ),
        (lambda d: d["operations"][1]["data"][0].update(b64="AAAA"), "bytes"),
        (lambda d: d["operations"][1]["data"][0].update(b64="!!"), "base64"),
        (lambda d: d["operations"][1]["data"][0].update(dtype="object"), "not numeric"),
        (lambda d: d["operations"][0]["data"].append({"$": "weird"}), "unknown tagged value"),
        (lambda d: d.update(trainable_params=[9]), "trainable_params"),
        (lambda d: d.update(shots=[[0, 1]]), "shots"),
        (lambda d: d.pop("operations"), "missing field 'operations'"),
    ],
)
def test_malformed_input_raises_a_clear_value_error(mutate, match):
    d = _valid()
    mutate(d)
    with pytest.raises(ValueError, match=match):
        tape_from_dict(d)


def test_non_json_text_and_symbols_are_rejected():
    with pytest.raises(ValueError, match="not valid JSON"):
        tape_from_json("{not json")
    with pytest.raises(ValueError, match="expected a JSON object"):
        tape_from_json("[1, 2]")
    d = _valid()
    d["operations"][0]["data"] = [{"$": "symbol", "name": "w", "index": [0]}]
    with pytest.raises(ValueError, match=r"ParametrizedCircuit\.from_json"):
        tape_from_dict(d)


# ----------------------------------------------------------------------------- symbols


def ansatz(weights, x, c):
    """A circuit of primitives, templates, arithmetic and a symbolic observable; called
    with numbers it is an ordinary QNode body, the reference for its bound forms."""
    qml.AngleEmbedding(x, wires=[0, 1, 2])
    for layer in range(2):
        for i in range(3):
            qml.Rot(*weights[layer, i], wires=i)
        qml.CNOT([0, 1])
        qml.CRZ(-2 * weights[layer, 0, 0], wires=[1, 2])
    qml.ctrl(qml.RY(weights[1, 2, 1] / 2, wires=2), control=0, control_values=0)
    qml.adjoint(qml.IsingXX(c, wires=[0, 2]))
    qml.StronglyEntanglingLayers(weights, wires=[0, 1, 2])
    return qml.expval(qml.Hamiltonian([c, 0.5], [qml.Z(0) @ qml.Z(2), qml.X(1)]))


SHAPES = {"weights": (2, 3, 3), "x": 3, "c": ()}
DEV = qml.device("default.qubit")


@pytest.fixture(scope="module")
def circuit():
    return ParametrizedCircuit.from_function(ansatz, **SHAPES)


def _values(seed: int, batch: int | None = None) -> dict:
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    return {
        "weights": rng.normal(size=(*lead, 2, 3, 3)),
        "x": rng.normal(size=(*lead, 3)),
        "c": rng.normal(size=lead),
    }


def test_recording_keeps_symbols_in_operator_slots(circuit):
    assert circuit.symbols == {"weights": (2, 3, 3), "x": (3,), "c": ()}
    ops = circuit.operations
    assert [op.name for op in ops[:3]] == ["AngleEmbedding", "Rot", "Rot"]
    assert ops[1].data == (Symbol("weights", (0, 0, 0)), *ops[1].data[1:])
    assert ops[5].data == (Symbol("weights", (0, 0, 0), scale=-2.0),)
    assert len(circuit.measurements) == 1
    assert circuit.wires.tolist() == [0, 1, 2]


def test_bind_gives_the_plain_circuit(circuit):
    values = _values(0)
    tape = circuit.bind(**values)
    with qml.queuing.AnnotatedQueue() as q:
        ansatz(**values)
    assert qml.equal(tape, QuantumScript.from_queue(q))


def test_bind_with_autograd_gives_the_plain_qnode_gradient(circuit):
    values = _values(1)
    weights = pnp.array(values["weights"], requires_grad=True)

    def cost(w):
        tape = circuit.bind(weights=w, x=values["x"], c=values["c"])
        return qml.execute([tape], DEV, diff_method="parameter-shift")[0]

    plain = qml.QNode(ansatz, DEV, diff_method="parameter-shift")
    expected = qml.grad(plain, argnums=0)(weights, values["x"], values["c"])
    np.testing.assert_allclose(qml.grad(cost)(weights), expected, atol=1e-12)
    # the circuit as the body of a QNode
    as_qnode = qml.QNode(lambda w: circuit(weights=w, x=values["x"], c=values["c"]), DEV)
    np.testing.assert_allclose(qml.grad(as_qnode)(weights), expected, atol=1e-12)


def test_bind_with_torch_and_jax_values(circuit):
    import jax
    import jax.numpy as jnp

    values = _values(2)
    plain = qml.QNode(ansatz, DEV)
    expected = qml.grad(plain, argnums=0)(
        pnp.array(values["weights"], requires_grad=True), values["x"], values["c"]
    )
    w = torch.tensor(values["weights"], requires_grad=True)
    tape = circuit.bind(weights=w, x=torch.tensor(values["x"]), c=torch.tensor(values["c"]))
    qml.execute([tape], DEV, diff_method="backprop")[0].backward()
    np.testing.assert_allclose(w.grad.numpy(), expected, atol=1e-12)

    def cost(w):  # float32 (JAX's default precision)
        tape = circuit.bind(weights=w, x=jnp.asarray(values["x"]), c=jnp.asarray(values["c"]))
        return qml.execute([tape], DEV, diff_method="backprop")[0]

    grad = jax.jit(jax.grad(cost))(jnp.asarray(values["weights"], dtype=jnp.float32))
    np.testing.assert_allclose(grad, expected, atol=1e-4)


@pytest.mark.parametrize("batched", [("weights",), ("x",), ("weights", "x")])
def test_batched_binding_matches_each_sample(circuit, batched):
    single, many = _values(3), _values(4, batch=5)
    values = {k: many[k] if k in batched else single[k] for k in single}
    tape = circuit.bind(**values)
    assert tape.batch_size == 5
    (got,) = qml.execute([tape], DEV)
    for b in range(5):
        sample = {k: v[b] if k in batched else v for k, v in values.items()}
        (expected,) = qml.execute([circuit.bind(**sample)], DEV)
        np.testing.assert_allclose(got[b], expected, atol=1e-12)


def test_batched_binding_an_operator_pennylane_cannot_broadcast(circuit):
    values = {**_values(3), "c": np.zeros(4)}  # c is a Hamiltonian coefficient
    with pytest.raises(
        ValueError, match=r"bind: operator LinearCombination rejected the bound values \(a batch"
    ):
        circuit.bind(**values)


def test_json_round_trip_is_exact(circuit):
    text = circuit.to_json()
    restored = ParametrizedCircuit.from_json(text)
    assert restored.to_json() == text
    assert restored.symbols == circuit.symbols
    values = _values(5)
    assert qml.equal(restored.bind(**values), circuit.bind(**values))
    assert json.loads(text)["format"] == "qstore_pl.parametrized_circuit"


def test_function_without_measurements_and_constants():
    def layer(w):
        qml.RX(0.123, wires=0)
        qml.RY(w, wires=0)

    pc = ParametrizedCircuit.from_function(layer, w=())
    assert pc.measurements == [] and pc.symbols == {"w": ()}
    tape = pc.bind(w=0.5)
    assert tape.operations[0] is pc.operations[0]  # symbol-free operators are reused
    assert qml.equal(tape, QuantumScript([qml.RX(0.123, 0), qml.RY(0.5, 0)]))


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"x": np.zeros(3), "c": 0.1}, r"missing values for \['weights'\]"),
        ({**_values(0), "extra": 1}, r"unknown symbols \['extra'\]"),
        ({**_values(0), "x": np.zeros(4)}, r"'x' must have shape \(3,\)"),
        ({**_values(0, batch=2), "x": np.zeros((3, 3))}, "batch sizes differ"),
    ],
)
def test_bind_errors(circuit, values, match):
    with pytest.raises(ValueError, match=match):
        circuit.bind(**values)


@pytest.mark.parametrize(
    ("fn", "error", "match"),
    [
        (lambda w: qml.RX(w[0] + 1, 0), ValueError, "operator RX holds a NaN"),
        (lambda w: qml.RX(np.cos(w[0]), 0), TypeError, "Symbols can only be passed straight"),
        (lambda w: qml.Rot(*np.array([w[0], w[1], 0.0]), wires=0), ValueError, "Rot holds a NaN"),
        (lambda w: qml.RX(Symbol("other"), 0), ValueError, "'other' is not declared"),
        (lambda w: qml.RX(Symbol("w", (5,)), 0), ValueError, "outside the declared shape"),
    ],
)
def test_recording_errors(fn, error, match):
    with pytest.raises(error, match=match):
        ParametrizedCircuit.from_function(fn, w=2)


def test_symbol_arithmetic():
    s = Symbol("w", (1, 2))
    assert 2 * s == Symbol("w", (1, 2), 2.0) == s * np.float64(2.0)
    assert -s / 4 == Symbol("w", (1, 2), -0.25)
    assert hash(3 * s) == hash(Symbol("w", (1, 2), 3.0))
    assert repr(-s) == "Symbol('w', (1, 2), scale=-1.0)"
    with pytest.raises(TypeError, match="real constant"):
        s * s
    with pytest.raises(ZeroDivisionError):
        s / 0
    with pytest.raises(ValueError, match="identifier"):
        Symbol("not a name")
    assert symbol_array("v", (2,))[1] == Symbol("v", (1,))


def test_arrays_mixing_symbols_and_constants():
    def embed(w, v):
        qml.AngleEmbedding(np.array([w[0], 0.25, -2 * v], dtype=object), wires=[0, 1, 2])
        return qml.expval(qml.Z(0) @ qml.Z(1) @ qml.Z(2))

    pc = ParametrizedCircuit.from_function(embed, w=2, v=())
    pc = ParametrizedCircuit.from_json(pc.to_json())
    tape = pc.bind(w=np.array([[0.1, 0.2], [0.3, 0.4]]), v=0.5)  # w batched, v shared
    np.testing.assert_array_equal(
        tape.operations[0].data[0], [[0.1, 0.25, -1.0], [0.3, 0.25, -1.0]]
    )
    weights = pnp.array([0.1, 0.2], requires_grad=True)
    grad = qml.grad(lambda w: qml.execute([pc.bind(w=w, v=0.5)], DEV, diff_method="best")[0])
    # d/dw0 of cos(w0) cos(0.25) cos(-1) with RX embeddings and Z⊗Z⊗Z
    expected = -np.sin(0.1) * np.cos(0.25) * np.cos(-1.0)
    np.testing.assert_allclose(grad(weights), [expected, 0.0], atol=1e-12)
