"""Calibration: robust fits checked against their samples, partial calibrations that
merge, name checks, progress, and where each time model comes from."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pennylane as qml
import pytest
from test_calibration import TRUE, synthetic_samples

import qstore_pl  # noqa: F401  (router config support)
from qstore_pl.cli import main as cli_main
from qstore_pl.exceptions import ConfigError, UnknownBackendError
from qstore_pl.router.calibration import measure as calibrate_module
from qstore_pl.router.calibration.fit import (
    Calibration,
    FitCheck,
    calibration_path,
    fit_and_check,
)
from qstore_pl.router.calibration.measure import select_for_calibration
from qstore_pl.router.config import load_config
from qstore_pl.router.registry.builtin import resolve_backends
from qstore_pl.router.routing.time_model import TimeModel

WIDE = (4, 8, 12, 14)


def forward_only(samples):
    return [s for s in samples if s.features.derivative is None]


def relative_errors(model: TimeModel, samples) -> np.ndarray:
    return np.array(
        [model.forward_seconds(s.features) / s.seconds - 1 for s in forward_only(samples)]
    )


def test_exact_timings_fit_with_no_error_and_no_outliers():
    model, check = fit_and_check(synthetic_samples(TRUE, WIDE), TimeModel())
    assert check.samples == len(forward_only(synthetic_samples(TRUE, WIDE)))
    assert check.rejected == 0
    assert check.median_error < 1e-6 and check.max_error < 1e-6
    assert model.per_gate_amplitude == pytest.approx(TRUE.per_gate_amplitude, rel=1e-6)


def test_runs_slowed_by_other_processes_are_rejected_and_do_not_move_the_model():
    """A few runs 5-20x too slow (a busy core) and 5 % jitter on the rest: the fit
    follows the undisturbed runs and reports what it dropped."""
    rng = np.random.default_rng(1)
    clean = synthetic_samples(TRUE, WIDE)
    jitter = [replace(s, seconds=s.seconds * rng.lognormal(0, 0.05)) for s in clean]
    disturbed = list(jitter)
    forward_positions = [i for i, s in enumerate(jitter) if s.features.derivative is None]
    for i, factor in zip(forward_positions[1::5], (5.0, 20.0, 8.0)):
        disturbed[i] = replace(disturbed[i], seconds=disturbed[i].seconds * factor)

    model, check = fit_and_check(disturbed, TimeModel())
    assert check.rejected == 3
    assert check.median_error < 0.1  # the kept runs: jitter only
    errors = np.abs(relative_errors(model, clean))
    assert np.median(errors) < 0.1 and errors.max() < 0.3, errors
    assert model.backward_factor == pytest.approx(TRUE.backward_factor, rel=0.15)

    # without rejection, the same disturbed runs would pull the model off
    naive = _fit_without_rejection(disturbed)
    assert np.median(np.abs(relative_errors(naive, clean))) > np.median(errors)


def _fit_without_rejection(samples):
    from qstore_pl.router.calibration import fit as calibration

    with pytest.MonkeyPatch.context() as m:
        m.setattr(calibration, "MAX_REJECTED_SHARE", 0.0)
        return calibration.fit_and_check(samples, TimeModel())[0]


def test_noise_alone_is_not_rejected():
    rng = np.random.default_rng(2)
    noisy = [
        replace(s, seconds=s.seconds * rng.lognormal(0, 0.1)) for s in synthetic_samples(TRUE, WIDE)
    ]
    _, check = fit_and_check(noisy, TimeModel())
    assert check.rejected == 0
    assert 0.01 < check.median_error < 0.2  # the check sees the noise
    assert not check.poor


def test_merging_keeps_the_other_backends_and_records_levels(tmp_path):
    older = Calibration(
        {"a": TRUE, "b": TRUE},
        "full",
        90.0,
        1.0e9,
        {"cpu": "x"},
        checks={"a": FitCheck(9, 1, 0.02, 0.1)},
    )
    newer_model = replace(TRUE, per_batch=1e-3)
    newer = Calibration({"b": newer_model}, "quick", 2.0, 2.0e9, {"cpu": "x"})
    merged = older.merged(newer)
    assert merged.models == {"a": TRUE, "b": newer_model}
    assert (merged.level_of("a"), merged.level_of("b"), merged.level) == ("full", "quick", "mixed")
    assert merged.checks == {"a": FitCheck(9, 1, 0.02, 0.1)}
    assert merged.created == 2.0e9
    loaded = Calibration.load(merged.save(tmp_path / "c.json"))
    assert loaded == merged
    assert "mixed" in merged.describe() and "2%/10%, 1 of 9" in merged.describe()
    busy = replace(merged, checks={"a": FitCheck(5, 0, 0.9, 0.99)})
    assert "poor: rerun on a quiet machine" in busy.describe()


@pytest.fixture
def tiny_levels(monkeypatch, tmp_path):
    """Calibration on, an empty cache, and a 'quick' level of 2-3 qubit circuits."""
    monkeypatch.setenv("QSTORE_CALIBRATION", "auto")
    monkeypatch.setenv("QSTORE_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(calibrate_module.LEVELS, "quick", ((2, 3), (1, 2), (1, 2), 0.0, 2))
    monkeypatch.setattr(calibrate_module, "_announced", False)
    return tmp_path


def test_unknown_and_cloud_backend_names_are_refused_with_the_closest_match(monkeypatch):
    monkeypatch.setenv("IONQ_API_KEY", "test-key")
    specs = resolve_backends(
        load_config({"backends": ["lightning.qubit", "default.qubit"]}).backends
    )
    with pytest.raises(UnknownBackendError, match=r"Did you mean 'lightning\.qubit'"):
        select_for_calibration(specs, ["lightnin.qubit"])
    assert [s.name for s in select_for_calibration(specs, ["default.qubit"])] == ["default.qubit"]
    assert len(select_for_calibration(specs)) == 2
    ionq = resolve_backends(load_config({"backends": ["ionq"]}).backends)
    with pytest.raises(ConfigError, match="cloud service"):
        select_for_calibration(ionq, ["ionq"])
    with pytest.raises(ConfigError, match="no local simulator to calibrate"):
        select_for_calibration(ionq)


def test_cli_refuses_a_misspelt_backend_and_saves_nothing(tiny_levels, capsys):
    assert cli_main(["calibrate", "--level", "quick", "--backend", "lightnin.qubit"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Did you mean 'lightning.qubit'" in err
    assert not calibration_path().exists()


def test_cli_partial_calibration_merges_into_the_cache_and_shows_progress(tiny_levels, capsys):
    kept = replace(TRUE, per_batch=0.123)
    Calibration({"lightning.qubit": kept}, "full", 90.0, 1.0e9, {}).save(calibration_path())
    assert cli_main(["calibrate", "--level", "quick", "--backend", "qstore.batched"]) == 0
    captured = capsys.readouterr()
    saved = Calibration.load()
    assert saved.models["lightning.qubit"] == kept
    assert saved.level_of("lightning.qubit") == "full"
    assert saved.level_of("qstore.batched") == "quick"
    assert saved.checks["qstore.batched"].samples >= 5
    assert "[1/1] measuring qstore.batched (quick)" in captured.err
    assert "fit within" in captured.err
    assert "lightning.qubit" in captured.out and "qstore.batched" in captured.out


def test_first_use_says_once_that_it_calibrates_and_explain_names_the_sources(
    tiny_levels, caplog, monkeypatch
):
    config = {"backends": ["qstore.batched", "default.qubit"]}
    with caplog.at_level(logging.WARNING, logger=calibrate_module.__name__):
        dev = qml.device("qstore.router", wires=2, router_config=config)
        monkeypatch.setenv("QSTORE_CACHE_DIR", str(tiny_levels / "elsewhere"))
        qml.device("qstore.router", wires=2, router_config=config)  # calibrates again, silently
    notes = [r.getMessage() for r in caplog.records if "calibrating" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0]
    assert "qstore.batched, default.qubit" in notes[0]

    @qml.qnode(dev)
    def circuit(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    text = str(dev.explain(circuit, 0.3))
    assert "time models: measured (quick calibration): qstore.batched, default.qubit" in text
    monkeypatch.setenv("QSTORE_CALIBRATION", "off")
    builtin = qml.device("qstore.router", wires=2, router_config=config)
    assert "time models: built-in: qstore.batched, default.qubit" in str(
        builtin.explain(circuit, 0.3)
    )


def test_old_calibration_files_without_levels_still_load(tmp_path):
    path = Calibration({"a": TRUE}, "full", 1.0, 1.0e9, {}).save(tmp_path / "c.json")
    import json

    payload = json.loads(path.read_text())
    del payload["levels"], payload["checks"]
    path.write_text(json.dumps(payload))
    loaded = Calibration.load(path)
    assert loaded.models == {"a": TRUE} and loaded.level_of("a") == "full"
