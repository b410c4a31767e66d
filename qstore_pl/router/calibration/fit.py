"""Calibrated time models: fit measured timings, cache them per machine.

The router ranks backends by :class:`~qstore_pl.router.routing.time_model.TimeModel`
estimates. Built-in coefficients come from one 2-core x86 machine; calibration
measures the machine at hand (``qstore-pl calibrate``, or a quick run on first use)
and fits every coefficient by non-negative least squares on relative error, so that
a small circuit's overhead and a large circuit's memory traffic weigh alike.

This module only fits and stores; measuring needs devices and lives in
:mod:`qstore_pl.router.calibration.measure`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from qstore_pl.router.routing.time_model import TimeModel
from qstore_pl.router.routing.workload import WorkloadFeatures
from qstore_pl.support import paths
from qstore_pl.support.atomic_file import atomic_write

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


#: A sample whose time is further than this factor from the fit (and than a few
#: times the typical deviation) is an outlier: another process held the core.
OUTLIER_FACTOR = 2.0
#: At most this share of the samples is rejected as outliers.
MAX_REJECTED_SHARE = 0.25
#: A fit whose median error exceeds this is reported as poor.
POOR_FIT = 0.5


@dataclass(frozen=True)
class FitCheck:
    """How well a fitted model reproduces its own measurements.

    Attributes
    ----------
    samples : int
        Forward samples measured.
    rejected : int
        Samples left out of the fit as outliers (disturbed by other processes).
    median_error : float
        Median of ``|predicted / measured - 1|`` over the samples kept.
    max_error : float
        Largest such error over the samples kept.
    """

    samples: int
    rejected: int
    median_error: float
    max_error: float

    @property
    def poor(self) -> bool:
        """Whether the model misses half its own measurements by more than half: the
        timings were disturbed (a busy machine) and the calibration is worth rerunning."""
        return self.median_error > POOR_FIT


def fit_time_model(samples: Sequence[Sample], prior: TimeModel) -> TimeModel:
    """Fit a backend's coefficients to measured samples (see :func:`fit_and_check`)."""
    return fit_and_check(samples, prior)[0]


def fit_and_check(samples: Sequence[Sample], prior: TimeModel) -> tuple[TimeModel, FitCheck]:
    """Fit a backend's coefficients to measured samples, robustly, and check the fit.

    Forward coefficients come from the samples without derivatives, by non-negative
    least squares on relative error. The per-amplitude coefficients are fitted only
    when at least two samples are ``AMPLITUDE_MIN_WIRES`` wide; otherwise the prior's
    are kept and only the overheads are fitted. Samples that the fit misses by more
    than ``OUTLIER_FACTOR`` (and by more than three robust deviations) are dropped and
    the rest refitted, a quarter of the samples at most: a run slowed down by another
    process must not move the model. The cost of a backward sweep relative to the
    forward pass (``backward_factor``) is the median ratio over the derivative samples.

    Parameters
    ----------
    samples : Sequence[Sample]
        Measurements of one backend.
    prior : TimeModel
        The model before calibration (its ``vectorised`` flag is kept).

    Returns
    -------
    tuple[TimeModel, FitCheck]
        The model, and how far it is from the forward samples it was fitted to.

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
    kept = forward
    model = _fit_forward(kept, prior, free)
    most_rejected = min(int(MAX_REJECTED_SHARE * len(forward)), len(forward) - free)
    for _ in range(5):  # converges in one or two rounds
        misses = _log_misses(model, forward)
        typical = float(np.median(misses[[s in kept for s in forward]]))
        limit = max(np.log(OUTLIER_FACTOR), 3 * 1.4826 * typical)
        worst_first = sorted(range(len(forward)), key=lambda i: -misses[i])
        outliers = [i for i in worst_first if misses[i] > limit][:most_rejected]
        refit = [s for i, s in enumerate(forward) if i not in outliers]
        if refit == kept:
            break
        kept = refit
        model = _fit_forward(kept, prior, free)
    model = _fit_backward_factor(model, samples)
    errors = np.abs(np.exp(-_log_misses(model, kept, signed=True)) - 1.0)
    check = FitCheck(
        samples=len(forward),
        rejected=len(forward) - len(kept),
        median_error=float(np.median(errors)),
        max_error=float(errors.max()),
    )
    return model, check


def _fit_forward(forward: Sequence[Sample], prior: TimeModel, free: int) -> TimeModel:
    """Non-negative least squares on relative error for the first ``free`` coefficients."""
    terms = np.array([_forward_terms(s.features, prior.vectorised) for s in forward])
    fixed = np.array([getattr(prior, name) for name in _FORWARD_FIELDS[free:]])
    seconds = np.array([s.seconds for s in forward]) - terms[:, free:] @ fixed
    seconds = np.maximum(seconds, 1e-3 * np.array([s.seconds for s in forward]))
    design = terms[:, :free] / seconds[:, None]  # relative error: every sample counts alike
    scale = design.max(axis=0)
    scale[scale == 0] = 1.0
    coefficients, _ = nnls(design / scale, np.ones_like(seconds))
    fitted = (coefficients / scale).tolist() + fixed.tolist()
    return replace(prior, **dict(zip(_FORWARD_FIELDS, fitted)))


def _log_misses(model: TimeModel, forward: Sequence[Sample], signed: bool = False) -> np.ndarray:
    """``log(measured / predicted)`` per sample (its absolute value unless ``signed``)."""
    predicted = np.array([max(model.forward_seconds(s.features), 1e-12) for s in forward])
    misses = np.log(np.array([s.seconds for s in forward]) / predicted)
    return misses if signed else np.abs(misses)


def _fit_backward_factor(model: TimeModel, samples: Sequence[Sample]) -> TimeModel:
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
#: Under the package root: the simulators and the adapter the router times them through.
_ENGINE_CODE = ("devices/batched", "devices/qsim", "router/execution/adapter.py")


@functools.cache
def engine_digest() -> str:
    """A digest of our simulators' own code: a faster kernel makes old timings wrong
    even when no version number changed."""
    package = Path(__file__).parents[2]
    digest = hashlib.sha256()
    for part in _ENGINE_CODE:
        path = package / part
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
    """Fitted time models per backend name, and how they were obtained.

    ``levels`` and ``checks`` are per backend: a calibration of some backends merges
    into the cache (:meth:`merged`) without discarding the others' models.
    """

    models: Mapping[str, TimeModel]
    level: str  # "quick", "full", or "mixed" after merging
    seconds: float  # how long the last measuring took
    created: float  # UNIX time of the last measuring
    fingerprint: Mapping[str, str]
    levels: Mapping[str, str] = field(default_factory=dict)  # per backend; default: level
    checks: Mapping[str, FitCheck] = field(default_factory=dict)

    def level_of(self, name: str) -> str:
        """The calibration level of one backend's model."""
        return self.levels.get(name, self.level)

    def merged(self, newer: Calibration) -> Calibration:
        """A copy of this calibration with ``newer``'s models added or replacing these."""
        levels = {name: self.level_of(name) for name in self.models}
        levels |= {name: newer.level_of(name) for name in newer.models}
        distinct = set(levels.values())
        return replace(
            newer,
            models={**self.models, **newer.models},
            levels=levels,
            level=distinct.pop() if len(distinct) == 1 else "mixed",
            checks={**self.checks, **newer.checks},
        )

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
            "levels": dict(self.levels),
            "checks": {name: asdict(c) for name, c in self.checks.items()},
        }
        with atomic_write(path) as out:
            out.write(json.dumps(payload, indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> Calibration | None:
        """The calibration of this machine, or ``None`` when there is none (or unreadable)."""
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
            checks = {name: FitCheck(**c) for name, c in payload.get("checks", {}).items()}
            return cls(
                models=models,
                level=payload["level"],
                seconds=payload["seconds"],
                created=payload["created"],
                fingerprint=payload["fingerprint"],
                levels=dict(payload.get("levels", {})),
                checks=checks,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        """A table of the fitted coefficients and of how well each fit matches its samples."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        lines = [
            f"calibration ({self.level}, last measured in {self.seconds:.1f} s on {when}; "
            f"{self.fingerprint.get('cpu', '?')}, {self.fingerprint.get('cores', '?')} cores)",
            f"  {'backend':<20}{'level':<7}{'per call':>10}{'per circ':>10}{'per gate':>10}"
            f"{'ns/gate/amp':>13}{'backward':>10}  fit error (median/max, outliers)",
        ]
        for name, m in self.models.items():
            check = self.checks.get(name)
            fit = (
                f"{check.median_error:.0%}/{check.max_error:.0%}, "
                f"{check.rejected} of {check.samples}"
                + (" (poor: rerun on a quiet machine)" if check.poor else "")
                if check
                else "-"
            )
            lines.append(
                f"  {name:<20}{self.level_of(name):<7}{m.per_batch * 1e3:>8.2f}ms"
                f"{m.per_circuit * 1e6:>8.1f}us{m.per_gate * 1e6:>8.2f}us"
                f"{m.per_gate_amplitude * 1e9:>13.3f}{m.backward_factor:>10.2f}  {fit}"
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
