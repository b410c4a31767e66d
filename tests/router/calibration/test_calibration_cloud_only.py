"""A router whose backends are all cloud services starts without a calibration.

Found by mypy: with ``calibration: auto`` and no cached calibration, a configuration
with no local simulator (nothing to measure) read ``None.models`` and the router could
not be built.
"""

from __future__ import annotations

import pennylane as qml

import qstore_pl  # noqa: F401  (router config support)
from qstore_pl.router.calibration.measure import apply_calibration
from qstore_pl.router.config import load_config
from qstore_pl.router.registry.builtin import resolve_backends


def test_cloud_only_backends_keep_their_built_in_time_models(monkeypatch, tmp_path):
    monkeypatch.setenv("IONQ_API_KEY", "test-key")
    monkeypatch.setenv("QSTORE_CACHE_DIR", str(tmp_path))  # no calibration cached here
    monkeypatch.setenv("QSTORE_CALIBRATION", "auto")
    specs = resolve_backends(load_config({"backends": ["ionq"]}).backends)
    assert apply_calibration(specs, "auto") == specs
    dev = qml.device("qstore.router", wires=2, backends=["ionq"])
    assert [spec.name for spec in dev.backends] == ["ionq"]
    assert not list(tmp_path.iterdir())  # nothing was measured or cached
