"""Calibrated time models: fitting, the per-machine cache, and their use in routing."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pennylane as qml
import pytest

import qstore_pl  # noqa: F401  (router config support)
from qstore_pl.cli import main as cli_main
from qstore_pl.exceptions import ConfigError
from qstore_pl.router.calibration.fit import (
    Calibration,
    Sample,
    calibration_path,
    engine_digest,
    fit_time_model,
    machine_fingerprint,
)
from qstore_pl.router.calibration.measure import workload_tape
from qstore_pl.router.routing.time_model import TimeModel
from qstore_pl.router.routing.workload import describe

TRUE = TimeModel(
    per_batch=3e-4,
    per_circuit=5e-5,
    per_gate=7e-6,
    per_gate_amplitude=4e-10,
    per_measurement_amplitude=9e-10,
    vectorised=False,
    backward_factor=1.7,
)


def synthetic_samples(model: TimeModel, widths) -> list[Sample]:
    """Exact timings that ``model`` predicts for the calibration workloads."""
    rng = np.random.default_rng(0)
    samples = []
    for n in widths:
        for layers in (1, 4):
            for batch in (1, 8):
                features = describe([workload_tape(n, layers, batch, rng)])
                samples.append(Sample(features, model.forward_seconds(features)))
                vjp = replace(features, derivative="vjp")
                samples.append(Sample(vjp, model.estimate(vjp, "adjoint")))
    return samples


def test_fit_recovers_the_coefficients_of_exact_timings():
    fitted = fit_time_model(synthetic_samples(TRUE, (4, 8, 12, 14)), TimeModel())
    for name in ("per_batch", "per_circuit", "per_gate", "per_gate_amplitude"):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE, name), rel=1e-6), name
    assert fitted.per_measurement_amplitude == pytest.approx(9e-10, rel=1e-6)
    assert fitted.backward_factor == pytest.approx(1.7, rel=1e-9)


def test_narrow_samples_fit_overheads_and_keep_the_priors_amplitude_costs():
    """Timings of cache-resident circuits cannot tell per-amplitude costs apart."""
    prior = replace(TimeModel(), per_gate_amplitude=1e-9, per_measurement_amplitude=2e-9)
    fitted = fit_time_model(synthetic_samples(TRUE, (3, 6)), prior)
    assert fitted.per_gate_amplitude == prior.per_gate_amplitude
    assert fitted.per_measurement_amplitude == prior.per_measurement_amplitude
    assert fitted.per_batch > 0 and fitted.per_gate > 0


def test_too_few_samples_are_refused():
    with pytest.raises(ValueError, match="at least 3 forward samples"):
        fit_time_model(synthetic_samples(TRUE, (3,))[:2], TimeModel())


def test_calibration_file_round_trip_and_unreadable_files(tmp_path):
    calibration = Calibration({"x": TRUE}, "full", 1.5, 1.0e9, {"cpu": "test", "cores": "2"})
    path = calibration.save(tmp_path / "c.json")
    assert Calibration.load(path) == calibration
    assert "x" in calibration.describe() and "0.400" in calibration.describe()
    path.write_text("{not json")
    assert Calibration.load(path) is None
    path.write_text(json.dumps({"format": 999}))
    assert Calibration.load(path) is None


@pytest.fixture
def calibrating(monkeypatch, tmp_path):
    """Calibration on, in an empty cache directory."""
    monkeypatch.setenv("QSTORE_CALIBRATION", "auto")
    monkeypatch.setenv("QSTORE_CACHE_DIR", str(tmp_path))
    return tmp_path


BACKENDS = {"backends": ["lightning.qubit", "qstore.batched"]}


def test_first_use_calibrates_and_caches_for_the_next_router(calibrating, monkeypatch):
    dev = qml.device("qstore.router", wires=3, router_config=BACKENDS)
    path = calibration_path()
    saved = Calibration.load(path)
    assert saved is not None and saved.level == "quick"
    assert set(saved.models) == {"lightning.qubit", "qstore.batched"}
    with monkeypatch.context() as m:
        m.setenv("QSTORE_CALIBRATION", "off")
        builtin = qml.device("qstore.router", wires=3, router_config=BACKENDS)
    for spec, default in zip(dev.backends, builtin.backends):
        assert spec.time_model == saved.models[spec.name] != default.time_model
        # measured overheads: which term takes them depends on the machine's noise
        m = spec.time_model
        assert m.per_batch + m.per_circuit + m.per_gate > 0
    stamp = path.stat().st_mtime_ns
    again = qml.device("qstore.router", wires=3, router_config=BACKENDS)
    assert path.stat().st_mtime_ns == stamp, "a cached calibration is not measured again"
    assert [s.time_model for s in again.backends] == [s.time_model for s in dev.backends]


def test_routing_follows_the_calibrated_models(calibrating):
    """Whatever the built-in models say, a calibration that makes one backend far
    faster on this machine decides the route."""
    slow = TimeModel(per_batch=1.0)
    fast = TimeModel(per_batch=1e-6, per_circuit=1e-9, per_gate=1e-9)
    pair = ("lightning.qubit", "qstore.batched")
    for winner, loser in (pair, pair[::-1]):
        models = {winner: fast, loser: slow}
        Calibration(models, "full", 1.0, 1.0e9, {}).save(calibration_path())
        dev = qml.device("qstore.router", wires=3, router_config=BACKENDS)

        @qml.qnode(dev)
        def circuit(x):
            qml.RX(x, 0)
            qml.CNOT([0, 1])
            return qml.expval(qml.Z(1))

        np.testing.assert_allclose(circuit(0.4), np.cos(0.4), atol=1e-12)
        assert set(dev.routing_report().totals) == {winner}


def test_calibration_mode_off_keeps_builtin_models_and_bad_modes_are_refused(
    calibrating, monkeypatch
):
    monkeypatch.setenv("QSTORE_CALIBRATION", "off")
    dev = qml.device("qstore.router", wires=2, router_config=BACKENDS)
    assert not calibration_path().exists()
    builtin = qml.device("qstore.router", wires=2, router_config={**BACKENDS, "calibration": "off"})
    assert [s.time_model for s in dev.backends] == [s.time_model for s in builtin.backends]
    with pytest.raises(ConfigError, match=r"config\['calibration'\] = 'sometimes'"):
        qml.device("qstore.router", wires=2, router_config={"calibration": "sometimes"})
    monkeypatch.setenv("QSTORE_CALIBRATION", "always")
    with pytest.raises(ValueError, match="QSTORE_CALIBRATION"):
        qml.device("qstore.router", wires=2, router_config=BACKENDS)


def test_cli_calibrate_writes_this_machines_file(calibrating, capsys):
    assert cli_main(["calibrate", "--level", "quick", "--backend", "qstore.batched"]) == 0
    out = capsys.readouterr().out
    assert "qstore.batched" in out and str(calibration_path()) in out
    assert set(Calibration.load().models) == {"qstore.batched"}


def test_a_change_to_the_simulators_code_asks_for_a_new_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("QSTORE_CACHE_DIR", str(tmp_path))
    fingerprint = machine_fingerprint()
    assert fingerprint["engines"] == engine_digest()
    edited = {**fingerprint, "engines": "another kernel"}
    assert calibration_path(edited) != calibration_path(fingerprint)
