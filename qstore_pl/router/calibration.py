"""Calibrated time models: fit measured timings, cache them per machine.

The router ranks backends by :class:`~qstore_pl.router.time_model.TimeModel`
estimates. Built-in coefficients come from one 2-core x86 machine; calibration
measures the machine at hand (``qstore-pl calibrate``, or a quick run on first use)
and fits every coefficient by non-negative least squares on relative error, so that
a small circuit's overhead and a large circuit's memory traffic weigh alike.

This module only fits and stores; measuring needs devices and lives in
:mod:`qstore_pl.devices.calibrate`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from qstore_pl import paths
from qstore_pl.router.time_model import TimeModel
from qstore_pl.router.workload import WorkloadFeatures

#: Environment variable that overrides the router's ``calibration`` setting.
CALIBRATION_ENV = "QSTORE_CALIBRATION"
#: Calibration settings: use (or on first use run and cache) a calibration, or not.
CALIBRATION_MODES = ("auto", "off")
_FORMAT = 1
_PACKAGES = ("pennylane", "pennylane-lightning", "qsimcirq", "numba", "numpy", "qstore_pl")


@dataclass(frozen=True)
class Sample:
    """One measured run: a workload, the derivative task, and its wall time."""

    features: WorkloadFeatures
    seconds: float


def _forward_terms(f: WorkloadFeatures, vectorised: bool) -> np.ndarray:
    units = f.num_tapes if vectorised else f.batch_size
    amplitudes = f.batch_size * 2.0**f.num_wires
    return np.array(
        [1.0, units, units * f.num_gates, amplitudes * f.num_gates, amplitudes * f.num_measurements]
    )


_FORWARD_FIELDS = (
    "per_batch",
    "per_circuit",
    "per_gate",
    "per_gate_amplitude",
    "per_measurement_amplitude",
)


#: Narrower circuits run from the CPU caches at a cost per amplitude dominated by
#: overheads: their timings cannot pin the per-amplitude coefficients down.
AMPLITUDE_MIN_WIRES = 10


def fit_time_model(samples: Sequence[Sample], prior: TimeModel) -> TimeModel:
    """Fit a backend's coefficients to measured samples.

    Forward coefficients come from the samples without derivatives, by non-negative
    least squares on relative error. The per-amplitude coefficients are fitted only
    when at least two samples are ``AMPLITUDE_MIN_WIRES`` wide; otherwise the prior's
    are kept and only the overheads are fitted. The cost of a backward sweep relative
    to the forward pass (``backward_factor``) is the median ratio over the derivative
    samples.

    Parameters
    ----------
    samples : Sequence[Sample]
        Measurements of one backend.
    prior : TimeModel
        The model before calibration (its ``vectorised`` flag is kept).

    Raises
    ------
    ValueError
        If there are fewer forward samples than coefficients to fit.
    """
    forward = [s for s in samples if s.features.derivative is None]
    wide = sum(s.features.num_wires >= AMPLITUDE_MIN_WIRES for s in forward)
    free = len(_FORWARD_FIELDS) if wide >= 2 else 3  # the first three are overheads
    if len(forward) < free:
        raise ValueError(
            f"need at least {free} forward samples to fit a time model, got {len(forward)}"
        )
    terms = np.array([_forward_terms(s.features, prior.vectorised) for s in forward])
    fixed = np.array([getattr(prior, name) for name in _FORWARD_FIELDS[free:]])
    seconds = np.array([s.seconds for s in forward]) - terms[:, free:] @ fixed
    seconds = np.maximum(seconds, 1e-3 * np.array([s.seconds for s in forward]))
    design = terms[:, :free] / seconds[:, None]  # relative error: every sample counts alike
    scale = design.max(axis=0)
    scale[scale == 0] = 1.0
    coefficients, _ = nnls(design / scale, np.ones_like(seconds))
    fitted = (coefficients / scale).tolist() + fixed.tolist()
    model = replace(prior, **dict(zip(_FORWARD_FIELDS, fitted)))
    ratios = []
    for s in samples:
        f = s.features
        if f.derivative is None:
            continue
        sweeps = 1 if f.derivative == "vjp" else f.num_measurements
        base = model.forward_seconds(replace(f, derivative=None))
        ratios.append(max(s.seconds / base - 1.0, 0.0) / sweeps)
    if ratios:
        model = replace(model, backward_factor=float(np.median(ratios)))
    return model


def machine_fingerprint() -> dict[str, str]:
    """What makes timings differ between machines: CPU, cores, GPU, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    gpus = (
        sorted(p.name for p in Path("/proc/driver/nvidia/gpus").glob("*"))
        if Path("/proc/driver/nvidia/gpus").exists()
        else []
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "gpus": str(len(gpus)),
        "python": platform.python_version(),
        "engines": engine_digest(),
        **{f"version:{k}": v for k, v in versions.items()},
    }


#: The code whose speed calibration measures: our engines and the adapter the router
#: runs every backend through (relative to ``qstore_pl/devices``).
_ENGINE_CODE = ("batched", "qsim", "backend.py")


@functools.cache
def engine_digest() -> str:
    """A digest of our simulators' own code: a faster kernel makes old timings wrong
    even when no version number changed."""
    devices = Path(__file__).parents[1] / "devices"
    digest = hashlib.sha256()
    for part in _ENGINE_CODE:
        path = devices / part
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def calibration_path(fingerprint: Mapping[str, str] | None = None) -> Path:
    """The cache file for this machine (``$QSTORE_CACHE_DIR`` or the user cache dir)."""
    fingerprint = fingerprint or machine_fingerprint()
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    return paths.cache_dir() / f"calibration-{digest}.json"


@dataclass(frozen=True)
class Calibration:
    """Fitted time models per backend name, and how they were obtained."""

    models: Mapping[str, TimeModel]
    level: str  # "quick" or "full"
    seconds: float  # how long measuring took
    created: float  # UNIX time
    fingerprint: Mapping[str, str]

    def save(self, path: Path | None = None) -> Path:
        """Write atomically (a crash never leaves half a file)."""
        path = path or calibration_path(self.fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": _FORMAT,
            "level": self.level,
            "seconds": self.seconds,
            "created": self.created,
            "fingerprint": dict(self.fingerprint),
            "models": {name: asdict(m) for name, m in self.models.items()},
        }
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(json.dumps(payload, indent=1, sort_keys=True))
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> Calibration | None:
        """This machine's calibration, or ``None`` when there is none (or it is unreadable)."""
        path = path or calibration_path()
        try:
            payload = json.loads(path.read_text())
            if payload.get("format") != _FORMAT:
                return None
            known = {f.name for f in fields(TimeModel)}
            models = {
                name: TimeModel(**{k: v for k, v in m.items() if k in known})
                for name, m in payload["models"].items()
            }
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(
            models=models,
            level=payload["level"],
            seconds=payload["seconds"],
            created=payload["created"],
            fingerprint=payload["fingerprint"],
        )

    def describe(self) -> str:
        """A table of the fitted coefficients."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        lines = [
            f"calibration ({self.level}, measured in {self.seconds:.1f} s on {when}; "
            f"{self.fingerprint.get('cpu', '?')}, {self.fingerprint.get('cores', '?')} cores)",
            f"  {'backend':<20}{'per call':>10}{'per circ':>10}{'per gate':>10}"
            f"{'ns/gate/amp':>13}{'backward':>10}",
        ]
        for name, m in self.models.items():
            lines.append(
                f"  {name:<20}{m.per_batch * 1e3:>8.2f}ms{m.per_circuit * 1e6:>8.1f}us"
                f"{m.per_gate * 1e6:>8.2f}us{m.per_gate_amplitude * 1e9:>13.3f}"
                f"{m.backward_factor:>10.2f}"
            )
        return "\n".join(lines)


def calibration_mode(configured: str) -> str:
    """The effective calibration setting: ``$QSTORE_CALIBRATION`` wins over the config."""
    mode = os.environ.get(CALIBRATION_ENV) or configured
    if mode not in CALIBRATION_MODES:
        raise ValueError(
            f"calibration mode {mode!r} (from ${CALIBRATION_ENV} or config['calibration']) "
            f"is not one of {CALIBRATION_MODES}"
        )
    return mode
