"""Pricing models, estimates before running, and charges recorded after."""

import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, ionq, price
from pennylane import numpy as pnp

from qstore_pl.callbacks import DeviceCallback
from qstore_pl.devices.ionq.pricing import PricingModel, default_pricing, parse_pricing
from qstore_pl.devices.ionq.simulate import gate_counts
from qstore_pl.exceptions import ConfigError

emulator = pytest.fixture(emulator_server, name="emulator")


def test_the_three_formulas():
    azure = default_pricing("qpu.aria-1")
    # max(minimum, shots * (0.00022 N1q + 0.000975 N2q)) per job
    assert azure.job_cost(1, 100, 10, 4) == pytest.approx(12.4166)
    assert azure.job_cost(4, 5000, 10, 4) == pytest.approx(4 * 5000 * (10 * 0.00022 + 4 * 0.000975))
    with_mitigation = default_pricing("qpu.aria-1", error_mitigation=True)
    assert with_mitigation.job_cost(1, 100, 10, 4) == pytest.approx(97.50)
    braket = default_pricing("qpu.forte-1")
    assert braket.job_cost(3, 1000, 10, 4) == pytest.approx(3 * (0.30 + 0.08 * 1000))
    assert default_pricing("simulator").job_cost(9, 10**6, 100, 100) == 0.0
    assert azure.job_cost(0, 1000, 10, 4) == 0.0  # nothing submitted, nothing charged


def test_every_number_can_be_overridden_and_bad_ones_are_refused():
    base = default_pricing("qpu.aria-1")
    cheaper = parse_pricing({"cost_2q": 0.0005, "minimum": 1.0}, base, "pricing")
    assert (cheaper.cost_1q, cheaper.cost_2q, cheaper.minimum) == (0.00022, 0.0005, 1.0)
    braket = parse_pricing({"model": "per_task_shot", "per_shot": 0.03}, base, "pricing")
    assert braket == PricingModel("per_task_shot", per_shot=0.03)
    for bad, match in [
        ({"cost_3q": 1}, "unknown key"),
        ({"model": "per_minute"}, "choose one of"),
        ({"minimum": -1}, "non-negative"),
        ({"cost_1q": "cheap"}, "non-negative"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_pricing(bad, base, "pricing")


def hardware_router(tmp_path, gateset="qis", **top):
    cfg = config(
        tmp_path,
        ionq("hardware", "qpu.aria-1", options={"gateset": gateset}),
        routing_strategy="cost_optimized",
        **top,
    )
    return qml.device("qstore.router", wires=3, router_config=cfg)


def layer_circuit(dev, shots):
    @qml.qnode(dev, shots=shots)
    def circuit(w):
        for i in range(3):
            qml.RY(w[i], i)
            qml.RZ(w[3 + i], i)
        for i in range(3):
            qml.CNOT([i, (i + 1) % 3])
        return qml.expval(qml.Z(0))

    return circuit


def test_estimate_shows_gradient_methods_and_native_compilation(emulator, tmp_path):
    dev = hardware_router(tmp_path, gateset="native")
    w = pnp.array(np.linspace(0.1, 0.6, 6), requires_grad=True)
    estimate = dev.estimate_cost(layer_circuit(dev, shots=2000), w)
    line = estimate["hardware"]
    assert line.gates == (6, 3) and line.trainable == 6
    assert line.native_gates[1] == 3 and line.native_gates[0] != 6
    assert line.cost() == pytest.approx(price(line.native_gates, 2000))
    assert line.cost(native=False) == pytest.approx(price((6, 3), 2000))
    # a forward job, then a gradient job: 2 x 6 shifted circuits, or 2 for SPSA
    forward = price(line.native_gates, 2000)
    assert line.cost("parameter-shift") == pytest.approx(
        forward + price(line.native_gates, 2000, 12)
    )
    assert line.cost("spsa") == pytest.approx(forward + price(line.native_gates, 2000, 2))
    text = str(estimate)
    assert "param-shift" in text and "spsa" in text and "before native compilation" in text
    assert not emulator.jobs  # nothing ran


def test_charge_recorded_after_equals_the_price_of_what_was_submitted(emulator, tmp_path):
    dev = hardware_router(tmp_path, gateset="native")
    circuit = layer_circuit(dev, shots=3000)
    circuit(np.linspace(0.1, 0.6, 6))
    [job] = emulator.jobs.values()
    submitted = gate_counts(job.payload["input"]["circuit"])
    assert {g["gate"] for g in job.payload["input"]["circuit"]} <= {"gpi", "gpi2", "ms"}
    report = dev.cost_report()
    assert report.by_backend == {"hardware": pytest.approx(price(submitted, 3000))}
    assert report.total == pytest.approx(price(submitted, 3000))
    assert report.executions == {"hardware": 1} and report.shots == {"hardware": 3000}


def test_spsa_training_steps_cost_what_the_estimate_says(emulator, tmp_path):
    dev = hardware_router(tmp_path)
    circuit = layer_circuit(dev, shots=1000)
    spsa = qml.set_shots(
        qml.QNode(circuit.func, dev, diff_method="spsa", gradient_kwargs={"h": 0.1}), 1000
    )
    w = pnp.array(np.linspace(0.1, 0.6, 6), requires_grad=True)
    expected = dev.estimate_cost(spsa, w)["hardware"].cost("spsa")
    qml.grad(spsa)(w)
    assert len(emulator.jobs) == 2  # the forward pass, then both SPSA circuits as one job
    assert dev.cost_report().total == pytest.approx(expected)


def test_callbacks_and_the_tracker_see_what_each_circuit_cost(emulator, tmp_path):
    class Records(DeviceCallback):
        def __init__(self):
            self.records = []

        def on_execution(self, record):
            self.records.append(record)

        lookup = DeviceCallback.lookup

    seen = Records()
    cfg = config(tmp_path, ionq("hardware", "qpu.aria-1"))
    dev = qml.device("qstore.router", wires=3, router_config=cfg, callbacks=[seen])
    circuit = layer_circuit(dev, shots=5000)
    batch = np.stack([np.linspace(0.1, 0.6, 6), np.linspace(0.6, 0.1, 6)], axis=1)
    with qml.Tracker(dev) as tracker:
        circuit(batch)  # one broadcast tape of 2 circuits: one job
    charged = dev.cost_report().total
    assert charged == pytest.approx(price((6, 3), 5000, circuits=2))
    assert sum(r.cost for r in seen.records) == pytest.approx(charged)
    assert {r.backend for r in seen.records} == {"hardware"}
    assert tracker.totals["cost"] == pytest.approx(charged)
