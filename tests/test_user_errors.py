"""A user's mistake is not a backend fault: input errors raise at once, with their own
type and a message that names the problem and the fix; only backend faults fall back."""

import logging

import numba
import numpy as np
import pennylane as qml
import pytest
import requests
import torch
from pennylane.exceptions import DeviceError

import qstore_pl
from qstore_pl.exceptions import (
    BackendExecutionError,
    ConfigError,
    InvalidParameterError,
    ParameterTypeError,
)
from qstore_pl.router.execution.faults import is_backend_fault

LOCAL = {"backends": ["qstore.batched", "lightning.qubit", "default.qubit"], "calibration": "off"}
ROUTER_LOG = "qstore_pl.router.device"


def rx_circuit(dev):
    @qml.qnode(dev)
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return circuit


# ------------------------------------------------------- input errors raise at once
def test_none_as_an_argument_raises_at_once():
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    tape = qml.tape.QuantumScript([qml.RY(None, 1)], [qml.expval(qml.Z(1))])
    with pytest.raises(ParameterTypeError, match=r"parameter 0 of RY is None \(NoneType\)"):
        qml.execute([tape], dev)


def test_a_string_argument_raises_at_once_and_nothing_runs(caplog):
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    with caplog.at_level(logging.WARNING, logger=ROUTER_LOG):
        with pytest.raises(ParameterTypeError) as info:
            rx_circuit(dev)("abc")
    message = str(info.value)
    assert "RX" in message and "'abc'" in message and "not a number" in message
    assert "float(" in message  # the fix
    assert isinstance(info.value, TypeError) and isinstance(info.value, InvalidParameterError)
    assert "trying the next" not in caplog.text
    assert dev.routing_report().totals == {}  # no backend was tried


def test_an_input_error_from_a_backend_keeps_its_type_and_is_not_retried(caplog):
    # a dict is not text, so it passes the router's own check and reaches a backend
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    tape = qml.tape.QuantumScript([qml.RX({"angle": 0.1}, 0)], [qml.expval(qml.Z(0))])
    [first] = dev.explain(tape).chosen
    with caplog.at_level(logging.WARNING, logger=ROUTER_LOG):
        with pytest.raises(Exception) as info:
            qml.execute([tape], dev)
    assert not isinstance(info.value, BackendExecutionError)
    assert isinstance(info.value, (KeyError, TypeError, ValueError))
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert f"raised by backend {first!r}" in notes and "not retried" in notes
    assert "trying the next" not in caplog.text and "failed" not in caplog.text
    report = dev.routing_report()
    assert all(t.failures == 0 and t.circuits == 0 for t in report.totals.values())


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        OSError("disk"),
        TimeoutError("job"),
        requests.ConnectionError("refused"),
        requests.HTTPError("503 Server Error"),
        RuntimeError("kernel crashed"),
        NotImplementedError("no such kernel"),
        DeviceError("operation not supported"),
        qstore_pl.UnsupportedCircuitError("too wide"),
        numba.core.errors.TypingError("cannot type"),
        qml.exceptions.QuantumFunctionError("adjoint does not support this observable"),
        qml.exceptions.MatrixUndefinedError(),
    ],
)
def test_backend_faults_fall_back(error):
    assert is_backend_fault(error)


@pytest.mark.parametrize(
    "error",
    [
        KeyError(str),
        TypeError("unexpected keyword argument"),
        ValueError("bad value"),
        IndexError("tuple index out of range"),
        AttributeError("x"),
        InvalidParameterError("nan"),
        ConfigError("bad option"),
    ],
)
def test_input_errors_do_not_fall_back(error):
    assert not is_backend_fault(error)


def test_an_exception_may_declare_itself():
    refused = RuntimeError("HTTP 400: bad circuit")
    refused.backend_fault = False
    assert not is_backend_fault(refused)
    flaky = ValueError("checksum mismatch in transit")
    flaky.backend_fault = True
    assert is_backend_fault(flaky)


# ------------------------------------------------ faults fall back, logs tell the truth
BROKEN = {"name": "broken", "type": "lightning.qubit", "options": {"mcmc": True}}


def test_a_fault_on_the_last_backend_does_not_claim_a_next_one(caplog):
    dev = qml.device("qstore.router", wires=2, router_config={"backends": [BROKEN]})
    with caplog.at_level(logging.WARNING, logger=ROUTER_LOG):
        with pytest.raises(BackendExecutionError, match="broken: NotImplementedError"):
            rx_circuit(dev)(0.3)
    assert "trying the next" not in caplog.text
    assert "no backend left to try" in caplog.text


def test_a_fault_falls_back_and_says_so_once(caplog):
    dev = qml.device(
        "qstore.router", wires=2, router_config={"backends": [BROKEN, "default.qubit"]}
    )
    with caplog.at_level(logging.WARNING, logger=ROUTER_LOG):
        value = rx_circuit(dev)(0.3)
    assert value == pytest.approx(np.cos(0.3))
    assert caplog.text.count("trying the next") == 1
    assert dev.routing_report().totals["broken"].failures == 1


# ------------------------------------------------------ backend options at construction
@pytest.mark.parametrize(
    "entry, expected",
    [
        (
            {"name": "q", "type": "qstore.qsim", "options": {"max_fused_gat_size": 2}},
            "did you mean 'max_fused_gate_size'",
        ),
        (
            {"name": "l", "type": "lightning.qubit", "options": {"cdtype": "complex64"}},
            "did you mean 'c_dtype'",
        ),
        (
            {"name": "b", "type": "qstore.batched", "options": {"kernal": "jit"}},
            "did you mean 'kernel'",
        ),
        (
            {"name": "b", "type": "qstore.batched", "options": {"wires": 3}},
            "remove 'wires'",
        ),
    ],
)
def test_misspelt_backend_options_fail_at_construction(entry, expected):
    with pytest.raises(ConfigError) as info:
        qml.device("qstore.router", wires=2, router_config={"backends": [entry]})
    message = str(info.value)
    assert expected in message
    assert f"backend {entry['name']!r}" in message and "unknown option" in message


def test_a_misspelt_ionq_option_fails_at_construction(monkeypatch):
    monkeypatch.setenv("IONQ_API_KEY", "sk-test-not-used")
    entry = {"name": "ionq", "type": "ionq", "options": {"gatset": "native"}}
    with pytest.raises(ConfigError, match="did you mean 'gateset'"):
        qml.device("qstore.router", wires=2, router_config={"backends": [entry]})


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"target": "qpu.aria1"}, "Did you mean 'qpu.aria-1'"),
        ({"target": "simulater"}, "Did you mean 'simulator'"),
        ({"target": "qpu.forte-1", "gateset": "nativ"}, "Did you mean 'native'"),
    ],
)
def test_ionq_target_names_are_checked_at_construction(monkeypatch, options, expected):
    monkeypatch.setenv("IONQ_API_KEY", "sk-test-not-used")
    entry = {"name": "ionq", "type": "ionq", "options": options}
    with pytest.raises(ConfigError, match=expected) as info:
        qml.device("qstore.router", wires=2, router_config={"backends": [entry]})
    assert "sk-test-not-used" not in str(info.value)


def test_valid_options_still_build():
    entry = {"name": "q", "type": "qstore.qsim", "options": {"max_fused_gate_size": 3}}
    dev = qml.device("qstore.router", wires=2, router_config={"backends": [entry]})
    assert rx_circuit(dev)(0.4) == pytest.approx(np.cos(0.4), abs=1e-6)


# -------------------------------------------------------------------- wires, layers
@pytest.mark.parametrize("name", ["qstore.router", "qstore.batched", "qstore.qsim"])
@pytest.mark.parametrize("wires", [0, -3])
def test_wires_below_one_are_refused(name, wires):
    with pytest.raises(ValueError, match=rf"wires={wires} but a device needs at least 1 wire"):
        qml.device(name, wires=wires)


@pytest.mark.parametrize("name", ["qstore.router", "qstore.batched", "qstore.qsim"])
def test_a_fractional_wire_count_is_refused(name):
    with pytest.raises(TypeError, match=r"wires=2\.5; give the number of wires as an integer"):
        qml.device(name, wires=2.5)


def test_a_string_wire_is_still_a_label():
    dev = qml.device("qstore.router", wires="a")
    assert list(dev.wires) == ["a"]


@pytest.mark.parametrize("field", ["n_qubits", "depth"])
def test_torch_quantum_layer_takes_integer_sizes(field):
    from qstore_pl.torch import QuantumLayer

    sizes = {"n_qubits": 2, "depth": 1, field: "4"}
    with pytest.raises(TypeError, match=rf"{field} must be an integer, got '4' \(str\)"):
        QuantumLayer(**sizes, device="default.qubit")


def test_keras_layer_with_a_wrong_weight_shape_names_the_shape():
    from qstore_pl.keras import KerasLayer

    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    layer = KerasLayer(strongly_entangling(dev), {"weights": (3,)})
    with pytest.raises(ValueError) as info:
        layer(np.ones((4, 2)))
    message = str(info.value)
    assert "weights: (3,)" in message and "weight_shapes" in message
    assert "StronglyEntanglingLayers.shape" in message
    assert dev.routing_report().totals == {}  # nothing ran


def strongly_entangling(dev):
    @qml.qnode(dev)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(2))
        qml.StronglyEntanglingLayers(weights, wires=range(2))
        return [qml.expval(qml.Z(i)) for i in range(2)]

    return circuit


def test_torch_layer_with_a_wrong_weight_shape_names_the_shape():
    from qstore_pl.torch import TorchLayer

    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    layer = TorchLayer(strongly_entangling(dev), {"weights": (3,)})
    with pytest.raises(ValueError) as info:
        layer(torch.ones(4, 2))
    message = str(info.value)
    assert "weights: (3,)" in message and "2 input features" in message
    assert "IndexError" in message and "StronglyEntanglingLayers.shape" in message
    assert dev.routing_report().totals == {}  # nothing ran


def test_torch_layer_with_the_right_shape_matches_pennylanes():
    from qstore_pl.torch import TorchLayer

    circuit = strongly_entangling(qml.device("qstore.router", wires=2, router_config=LOCAL))
    shapes = {"weights": qml.StronglyEntanglingLayers.shape(n_layers=2, n_wires=2)}
    torch.manual_seed(3)
    ours = TorchLayer(circuit, shapes)
    theirs = qml.qnn.TorchLayer(circuit, shapes)
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(5, 2, dtype=torch.float64)
    assert torch.allclose(ours(x), theirs(x))


def test_keras_quantum_layer_takes_integer_sizes():
    from qstore_pl.keras import QuantumLayer

    with pytest.raises(TypeError, match=r"n_qubits must be an integer, got '4'"):
        QuantumLayer(n_qubits="4", depth=1, device="default.qubit")


def test_torch_layer_with_right_sizes_still_trains():
    from qstore_pl.torch import QuantumLayer

    layer = QuantumLayer(n_qubits=2, depth=1, device="qstore.router")
    out = layer(torch.ones(3, 2, dtype=torch.float64))
    out.sum().backward()
    assert out.shape == (3, 2)
    assert all(p.grad is not None for p in layer.parameters())
