"""The qstore.router device: bad input, transparency, tracking, callbacks, fallback."""

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane import numpy as pnp

import qstore_pl
from qstore_pl.callbacks import DeviceCallback
from qstore_pl.exceptions import (
    BackendExecutionError,
    ConfigError,
    InvalidParameterError,
    UnsupportedCircuitError,
)

LOCAL = {"backends": ["lightning.qubit", "default.qubit"]}


def small_circuit(dev, **qnode_kwargs):
    @qml.qnode(dev, **qnode_kwargs)
    def circuit(x, w):
        qml.RX(x, 0)
        qml.RY(w[0], 1)
        qml.CNOT([0, 1])
        qml.RZ(w[1], 1)
        return qml.expval(qml.Z(0) @ qml.Z(1))

    return circuit


def reference(x, w):
    return small_circuit(qml.device("default.qubit", wires=2))(x, w)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_are_refused_and_nothing_is_lost(bad):
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    circuit = small_circuit(dev)
    w = np.array([0.2, 0.3])
    with pytest.raises(InvalidParameterError, match=r"parameter 0 of RX on wires \[0\]"):
        circuit(bad, w)
    # the device keeps working and nothing ran for the bad call
    assert dev.routing_report().totals == {}
    assert np.isclose(circuit(0.5, w), reference(0.5, w))


def test_non_finite_parameter_in_a_gradient_is_refused():
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    circuit = small_circuit(dev)
    with pytest.raises(InvalidParameterError, match="not finite"):
        qml.grad(circuit)(pnp.array(0.1), pnp.array([np.nan, 0.2]))


def test_a_circuit_wider_than_every_backend_is_refused_with_each_limit():
    dev = qml.device("qstore.router", wires=40, router_config=LOCAL)

    @qml.qnode(dev)
    def wide():
        for i in range(40):
            qml.Hadamard(i)
        return qml.expval(qml.Z(39))

    with pytest.raises(UnsupportedCircuitError) as info:
        wide()
    assert "lightning.qubit: 40 wires > max" in str(info.value)
    assert "default.qubit: 40 wires > max" in str(info.value)


class Opaque(qml.operation.Operation):
    """A gate with neither a matrix nor a decomposition: nobody can run it."""

    num_wires = 1
    num_params = 0


def test_an_operation_no_backend_supports_is_named():
    dev = qml.device("qstore.router", wires=1, router_config=LOCAL)

    @qml.qnode(dev)
    def circuit():
        Opaque(wires=0)
        return qml.expval(qml.Z(0))

    for _ in range(2):  # every time: known structures skip preprocessing, refused ones never
        with pytest.raises(UnsupportedCircuitError, match="Opaque"):
            circuit()


def test_an_observable_only_some_backends_support_routes_to_them():
    # lightning.qubit cannot measure Adjoint(PauliY); default.qubit can
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.adjoint(qml.Y(0)))

    dev = qml.device("qstore.router", wires=1, router_config=LOCAL)
    expected = qml.QNode(circuit, qml.device("default.qubit", wires=1))(0.3)
    assert np.isclose(qml.QNode(circuit, dev)(0.3), expected)
    assert dev.routing_report().recent[-1].backend == "default.qubit"

    lightning_only = qml.device(
        "qstore.router", wires=1, router_config={"backends": ["lightning.qubit"]}
    )
    with pytest.raises(UnsupportedCircuitError, match=r"unsupported observables \['Adjoint"):
        qml.QNode(circuit, lightning_only)(0.3)


def test_unknown_device_options_and_bad_callbacks_are_refused():
    with pytest.raises(ConfigError, match="on_execution"):
        qml.device("qstore.router", wires=1, callbacks=[object()])
    dev = qml.device("qstore.router", wires=1)
    config = qml.devices.ExecutionConfig(device_options={"turbo": True})
    with pytest.raises(qml.exceptions.DeviceError, match="turbo"):
        dev.setup_execution_config(config)


# ------------------------------------------------------------- transparency
def test_explain_shows_every_candidate_and_the_chosen_one():
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    circuit = small_circuit(dev)
    explanation = dev.explain(circuit, pnp.array(0.1), pnp.array([0.2, 0.3]))
    text = str(explanation)
    assert "lightning.qubit" in text and "default.qubit" in text
    assert "forward + vjp" in text  # trainable parameters: the derivative pass
    assert explanation.chosen[0] in ("lightning.qubit", "default.qubit")
    assert f"chosen: {explanation.chosen[0]}" in text
    forward = dev.explain(circuit, 0.1, np.array([0.2, 0.3]), derivative=None)
    assert "forward + " not in str(forward)


def test_explain_state_derivatives_excludes_lightning():
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)

    @qml.qnode(dev)
    def circuit(x):
        qml.RX(x, 0)
        return qml.probs(wires=[0, 1])

    explanation = dev.explain(circuit, pnp.array(0.4, requires_grad=True))
    assert explanation.chosen == ["default.qubit"]
    assert "no derivative method for ['state']" in str(explanation)


def test_tracker_and_report_count_executions_per_backend():
    dev = qml.device("qstore.router", wires=2, router_config={"backends": ["default.qubit"]})
    circuit = small_circuit(dev)
    with qml.Tracker(dev) as tracker:
        circuit(0.1, np.array([0.2, 0.3]))
        circuit(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.3]))  # broadcast: 3 circuits
    assert tracker.totals["executions:default.qubit"] == 4
    assert tracker.history["backend"] == ["default.qubit", "default.qubit"]
    report = dev.routing_report()
    assert report.totals["default.qubit"].circuits == 4
    assert "default.qubit" in str(report)
    dev.reset_routing_report()
    assert dev.routing_report().totals == {}


def test_groups_of_different_structure_are_routed_and_reassembled_in_order():
    dev = qml.device("qstore.router", wires=3, router_config=LOCAL)
    ref = qml.device("default.qubit", wires=3)
    tapes = []
    for i in range(6):
        ops = [qml.RX(0.1 * i, 0)] + ([qml.CNOT([0, 2])] if i % 2 else [qml.Hadamard(1)])
        tapes.append(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0) @ qml.Z(2))]))
    results = qml.execute(tapes, dev)
    expected = qml.execute(tapes, ref)
    assert np.allclose(results, expected, atol=1e-12)
    assert sum(t.groups for t in dev.routing_report().totals.values()) == 2


# ----------------------------------------------------------------- callbacks
class Recorder(DeviceCallback):
    def __init__(self):
        self.records = []

    def on_execution(self, record):
        self.records.append(record)


class FixedCache(DeviceCallback):
    """Answers every lookup with a stored value and counts the questions."""

    def __init__(self, value):
        self.value, self.asked = value, 0

    def lookup(self, tape, backend):
        self.asked += 1
        return self.value


class Broken(DeviceCallback):
    def on_execution(self, record):
        raise RuntimeError("store is down")


def test_callbacks_receive_tape_result_backend_shots_and_time():
    recorder = Recorder()
    dev = qml.device(
        "qstore.router",
        wires=2,
        router_config={"backends": ["default.qubit"]},
        callbacks=[recorder],
    )
    circuit = small_circuit(dev)
    value = circuit(0.3, np.array([0.2, 0.1]))
    (record,) = recorder.records
    assert record.task == "execute" and record.backend == "default.qubit"
    assert record.shots is None and record.seconds > 0 and record.cost == 0.0
    assert np.isclose(record.result, value)
    assert record.tape.operations[0].name == "RX"

    qml.set_shots(circuit, shots=100)(0.3, np.array([0.2, 0.1]))
    assert recorder.records[-1].shots == 100


def test_a_cache_hit_skips_the_backend():
    cache = FixedCache(np.float64(0.25))
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL, callbacks=[cache])
    assert small_circuit(dev)(0.3, np.array([0.2, 0.1])) == 0.25
    assert cache.asked == 1
    (totals,) = dev.routing_report().totals.values()
    assert totals.cached == 1


def test_a_failing_callback_never_breaks_the_computation(caplog):
    dev = qml.device(
        "qstore.router",
        wires=2,
        router_config={"backends": ["default.qubit"]},
        callbacks=[Broken()],
    )
    w = np.array([0.2, 0.1])
    assert np.isclose(small_circuit(dev)(0.3, w), reference(0.3, w))
    assert "store is down" in caplog.text


# ------------------------------------------------------------------ fallback
# lightning.qubit with mcmc=True builds fine but refuses analytic execution: a real
# backend failure at run time.
BROKEN_FIRST = {
    "backends": [
        {"name": "broken", "type": "lightning.qubit", "options": {"mcmc": True}},
        "default.qubit",
    ]
}


def test_a_failing_backend_falls_back_to_the_next_ranked_one():
    dev = qml.device("qstore.router", wires=2, router_config=BROKEN_FIRST)
    circuit = small_circuit(dev)
    w = np.array([0.2, 0.1])
    assert dev.explain(circuit, 0.3, w).chosen == ["broken"]
    assert np.isclose(circuit(0.3, w), reference(0.3, w))
    report = dev.routing_report()
    assert report.totals["broken"].failures == 1
    assert report.totals["default.qubit"].circuits == 1
    assert report.recent[-1].failed[0].startswith("broken:")
    assert "fallback after 1 failure" in report.recent[-1].reason


def test_without_fallback_the_failure_is_reported_with_its_cause():
    dev = qml.device("qstore.router", wires=2, router_config={**BROKEN_FIRST, "fallback": False})
    with pytest.raises(BackendExecutionError, match=r"broken: .*kernel"):
        small_circuit(dev)(0.3, np.array([0.2, 0.1]))


def test_routing_works_with_wire_labels_and_unused_wires():
    dev = qml.device("qstore.router", wires=["a", "b", "c", "d"], router_config=LOCAL)
    ref = qml.device("default.qubit", wires=["a", "b", "c", "d"])

    def circuit(x):
        qml.RX(x, "c")
        qml.CNOT(["c", "a"])
        return qml.probs(wires=["a", "c"]), qml.expval(qml.Y("c"))

    got = qml.QNode(circuit, dev)(0.7)
    want = qml.QNode(circuit, ref)(0.7)
    assert np.allclose(got[0], want[0]) and np.isclose(got[1], want[1])
    # only the two wires the circuit touches were simulated
    assert dev.routing_report().recent[-1].circuits == 1
    assert any(key[1] == 2 for key in dev._seeds)


def test_package_exports_the_errors():
    for name in ("ConfigError", "UnknownBackendError", "UnsupportedCircuitError"):
        assert issubclass(getattr(qstore_pl, name), qstore_pl.QstoreError)


def test_a_derivative_goes_where_the_forward_states_already_are():
    dev = qml.device("qstore.router", wires=2, router_config={"backends": ["qstore.batched"]})
    circuit = small_circuit(dev, interface="torch")
    x = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)  # broadcast: three circuits
    w = torch.tensor([0.2, 0.3], dtype=torch.float64, requires_grad=True)

    def vjp_estimate():
        (decision,) = dev.explain(circuit, x, w, derivative="vjp").decisions
        return decision.candidates[0].seconds

    cold = vjp_estimate()
    forward = dev.explain(circuit, x, w, derivative=None).decisions[0].candidates[0].seconds
    circuit(x, w).sum().backward()
    runs = dev.routing_report().recent
    assert [r.task for r in runs] == ["execute", "vjp"]
    assert runs[1].backend == runs[0].backend == "qstore.batched"
    assert vjp_estimate() == pytest.approx(cold - forward)  # the forward pass is not paid twice
    expected = torch.tensor([0.2, 0.3], dtype=torch.float64, requires_grad=True)
    reference = small_circuit(qml.device("default.qubit", wires=2), interface="torch")
    reference(x, expected).sum().backward()
    assert torch.allclose(w.grad, expected.grad, atol=1e-10)


def test_forward_passes_of_a_training_loop_are_routed_with_their_vjp():
    dev = qml.device("qstore.router", wires=2, router_config={"backends": ["qstore.batched"]})
    circuit = small_circuit(dev, interface="torch")
    x = torch.tensor([0.1, 0.5], dtype=torch.float64)
    w = torch.tensor([0.2, 0.3], dtype=torch.float64, requires_grad=True)
    circuit(x, w).sum().backward()  # forward, then vjp
    circuit(x, w).sum().backward()
    with torch.no_grad():
        circuit(x, w)
        circuit(x, w)  # two forward passes in a row: no longer a training loop
    reasons = [
        (r.task, "with the vjp that follows" in r.reason) for r in dev.routing_report().recent
    ]
    assert reasons == [
        ("execute", True),  # trainable parameters and device VJPs: one is expected
        ("vjp", False),
        ("execute", True),
        ("vjp", False),
        ("execute", True),
        ("execute", False),
    ]
    fresh = qml.device("qstore.router", wires=2, router_config={"backends": ["qstore.batched"]})
    small_circuit(fresh, interface="torch")(x, w.detach())  # nothing trainable
    assert "follows" not in fresh.routing_report().recent[-1].reason
