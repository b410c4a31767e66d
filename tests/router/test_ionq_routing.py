"""Routing to IonQ: purposes, fallback on faults, queue awareness, config files, CLI."""

import os
import subprocess
import sys

import pennylane as qml
import pytest
import requests
import yaml
from ionq_support import API_KEY, config, emulator_server, exact, ionq, two_qubit_circuit

import qstore_pl
from qstore_pl.exceptions import ConfigError

emulator = pytest.fixture(emulator_server, name="emulator")

ISSUE_EXAMPLE = {
    "backends": [
        {
            "name": "ionq_hardware",
            "type": "ionq",
            "target": "qpu.aria-1",
            "use_for": "critical_only",
            "pricing": {
                "model": "per_gate_shot",
                "cost_1q": 0.00022,
                "cost_2q": 0.000975,
                "minimum": 12.4166,
            },
        },
        {"name": "ionq_simulator", "type": "ionq", "target": "simulator", "use_for": "training"},
        {"name": "local", "type": "auto", "use_for": "development"},
    ],
    "routing_strategy": "cost_optimized",
    "max_cost_per_batch": 20.0,
    "budget": 100.0,
    "fallback_chain": ["ionq_simulator", "local"],
}


def test_training_on_simulators_validation_on_hardware(emulator, tmp_path):
    dev = qml.device(
        "qstore.router", wires=2, router_config={**ISSUE_EXAMPLE, "ledger": str(tmp_path / "l")}
    )
    circuit = two_qubit_circuit(dev, shots=500)
    circuit(0.2)
    with qstore_pl.purpose("validation"):
        circuit(0.2)
    circuit(0.2)
    backends = [job.payload["backend"] for job in emulator.jobs.values()]
    assert backends == ["simulator", "qpu.aria-1", "simulator"]
    report = dev.cost_report()
    assert report.by_purpose == {"training": 0.0, "validation": pytest.approx(12.4166)}
    # analytic work cannot go to IonQ: the fallback chain's local simulators run it
    analytic = two_qubit_circuit(dev, shots=None)
    assert analytic(0.2) == pytest.approx(exact(0.2))
    explanation = str(dev.explain(analytic, 0.2))
    assert "no backend for training can run this (ionq_simulator: " in explanation
    assert "give the QNode shots" in explanation


def test_the_same_config_from_yaml_and_toml(emulator, tmp_path):
    (tmp_path / "router.yaml").write_text(yaml.safe_dump(ISSUE_EXAMPLE))
    toml = tmp_path / "router.toml"
    toml.write_text(
        'routing_strategy = "cost_optimized"\nbudget = 100.0\nmax_cost_per_batch = 20.0\n'
        'fallback_chain = ["ionq_simulator", "local"]\n'
        '[[backends]]\nname = "ionq_hardware"\ntype = "ionq"\ntarget = "qpu.aria-1"\n'
        'use_for = "critical_only"\n'
        'pricing = {model = "per_gate_shot", cost_1q = 0.00022, cost_2q = 0.000975, '
        "minimum = 12.4166}\n"
        '[[backends]]\nname = "ionq_simulator"\ntype = "ionq"\ntarget = "simulator"\n'
        'use_for = "training"\n'
        '[[backends]]\nname = "local"\ntype = "auto"\nuse_for = "development"\n'
    )
    devices = [
        qml.device("qstore.router", wires=2, router_config=tmp_path / name)
        for name in ("router.yaml", "router.toml")
    ]
    assert devices[0].config == devices[1].config
    hardware = {s.name: s for s in devices[1].backends}["ionq_hardware"]
    assert hardware.pricing.minimum == 12.4166 and hardware.use_for == {"validation"}


def test_a_failing_backend_hands_its_work_down_the_chain_with_the_same_shots(emulator, tmp_path):
    cfg = config(
        tmp_path,
        ionq("hardware", "qpu.aria-1", use_for="validation"),
        ionq("simulator", "simulator", use_for="training"),
        fallback_chain=["simulator"],
    )
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    emulator.set_faults(post_errors=[500, 503, 502])  # every hardware attempt fails
    with qml.Tracker(dev) as tracker, qstore_pl.purpose("validation"):
        value = two_qubit_circuit(dev, shots=4321)(0.5)
    assert value == pytest.approx(exact(0.5), abs=0.1)
    [job] = emulator.jobs.values()
    assert job.payload["backend"] == "simulator" and job.payload["shots"] == 4321
    assert tracker.history["backend"] == ["simulator"]
    [run] = dev.routing_report().recent
    assert run.backend == "simulator" and run.failed[0].startswith("hardware: IonQJobError")
    report = dev.cost_report()
    assert "hardware" not in report.by_backend and report.unconfirmed == 0.0  # nothing charged


def test_unavailable_and_long_queues_are_skipped_and_explained(emulator, tmp_path):
    emulator.set_faults(status={"qpu.aria-1": "offline"}, queue_seconds={"qpu.aria-2": 7200})
    cfg = config(
        tmp_path,
        ionq("aria1", "qpu.aria-1"),
        ionq("aria2", "qpu.aria-2", max_queue_seconds=600),
        ionq("forte", "qpu.forte-1"),
        routing_strategy="cost_optimized",
    )
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    circuit = two_qubit_circuit(dev, shots=100)
    explanation = str(dev.explain(circuit, 0.1))
    assert "IonQ reports offline" in explanation
    assert "queue 7200 s > max_queue_seconds 600 s" in explanation
    assert "chosen: forte" in explanation
    circuit(0.1)
    assert [j.payload["backend"] for j in emulator.jobs.values()] == ["qpu.forte-1"]


def test_queue_time_counts_in_the_performance_estimate(emulator, tmp_path):
    emulator.set_faults(queue_seconds={"qpu.aria-1": 3600})
    cfg = config(tmp_path, ionq("aria1", "qpu.aria-1"), ionq("forte", "qpu.forte-1"))
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    [decision] = dev.explain(two_qubit_circuit(dev), 0.1).decisions
    seconds = {c.backend: c.seconds for c in decision.candidates}
    assert seconds["aria1"] - seconds["forte"] == pytest.approx(3600)
    assert decision.backend == "forte"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"use_for": "sometimes"}, "use_for"),
        ({"pricing": {"model": "per_minute"}}, "choose one of"),
        ({"max_queue_seconds": -1}, "max_queue_seconds"),
    ],
)
def test_bad_backend_settings_are_refused(emulator, tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):
        qml.device("qstore.router", wires=2, router_config=config(tmp_path, ionq("x", **change)))


@pytest.mark.parametrize(
    ("top", "match"),
    [
        ({"budget": -5}, "budget"),
        ({"on_budget_exceeded": "ignore"}, "on_budget_exceeded"),
        ({"fallback_chain": ["simulatr"]}, "did you mean 'simulator'"),
    ],
)
def test_bad_spending_settings_are_refused(emulator, tmp_path, top, match):
    with pytest.raises(ConfigError, match=match):
        qml.device(
            "qstore.router", wires=2, router_config=config(tmp_path, ionq("simulator"), **top)
        )


def test_an_api_key_in_the_config_is_used_and_never_shown(emulator, tmp_path, monkeypatch):
    monkeypatch.delenv("IONQ_API_KEY")
    with pytest.raises(ConfigError, match="no IonQ API key"):
        qml.device("qstore.router", wires=2, router_config=config(tmp_path, ionq("simulator")))
    entry = ionq("simulator", options={"api_key": API_KEY})
    dev = qml.device("qstore.router", wires=2, router_config=config(tmp_path, entry))
    circuit = two_qubit_circuit(dev)
    circuit(0.3)
    shown = [repr(dev), repr(dev.config), repr(dev.backends), str(dev.explain(circuit, 0.3))]
    shown += [str(dev.cost_report()), str(dev.routing_report())]
    assert all(API_KEY not in text for text in shown)
    assert "Secret('***')" in repr(dev.config)


def test_the_emulator_command(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qstore_pl.cli",
            "ionq-emulator",
            "--port",
            "0",
            "--queue",
            "qpu.aria-1=42",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = proc.stdout.readline().split(" on ")[1].strip()
        answer = requests.get(f"{url}/v0.4/backends", headers={"Authorization": "apiKey k"})
        queues = {b["backend"]: b["average_queue_time"] for b in answer.json()}
        assert queues["qpu.aria-1"] == 42000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
