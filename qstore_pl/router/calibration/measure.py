"""Measure the local backends and fit their time models (see ``router/calibration/fit.py``).

The workload is the hardware-efficient training circuit the router mostly sees: RX
encoding, layers of RY and RZ on every wire with a ring of CNOTs, ``<Z>`` on every
wire; as single circuits and as parameter-broadcast batches, forward and with an
adjoint VJP, over a range of widths and depths. Each backend runs through the same
:class:`~qstore_pl.router.execution.adapter.Backend` adapter the router uses, so the fit
includes the adapter's own overhead.

A *quick* calibration (first use) stays at small widths; ``qstore-pl calibrate``
runs the *full* one, up to 18 qubits, which also captures how memory traffic grows
once states leave the CPU caches. Every workload is timed several times on fresh
parameters and the fastest run kept (another process can only add time), and the fit
drops the runs it misses by far (see :func:`~qstore_pl.router.calibration.fit.fit_and_check`):
on a busy machine the models stay those of the machine, not of the moment.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.exceptions import ConfigError, UnknownBackendError
from qstore_pl.router.calibration.fit import (
    Calibration,
    Sample,
    calibration_mode,
    calibration_path,
    fit_and_check,
    machine_fingerprint,
)
from qstore_pl.router.execution.adapter import Backend
from qstore_pl.router.registry.builtin import KNOWN_BACKENDS
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.router.routing.workload import describe
from qstore_pl.support.suggest import did_you_mean

logger = logging.getLogger(__name__)

#: (widths, layers, batch sizes, seconds per backend, timed runs per workload) per level
LEVELS = {
    "quick": ((3, 8, 12), (1, 3), (1, 16), 0.3, 3),
    "full": ((4, 8, 12, 14, 16, 18), (1, 4), (1, 32), 30.0, 5),
}
#: Progress messages go here (the command line prints them on stderr).
Progress = Callable[[str], None]


def workload_tape(n: int, layers: int, batch: int, rng: np.random.Generator) -> QuantumScript:
    """The calibration circuit; ``batch > 1`` broadcasts the encoding over the batch."""
    features = rng.uniform(0, np.pi, (batch, n) if batch > 1 else (n,))
    weights = rng.uniform(-np.pi, np.pi, (layers, n, 2))
    ops = [qml.RX(features[..., i], wires=i) for i in range(n)]
    for layer in range(layers):
        for i in range(n):
            ops += [qml.RY(weights[layer, i, 0], wires=i), qml.RZ(weights[layer, i, 1], wires=i)]
        if n > 1:
            ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
    encoding = sum(op.num_params for op in ops[:n])
    trainable = list(range(encoding, encoding + 2 * layers * n))
    return QuantumScript(ops, [qml.expval(qml.Z(i)) for i in range(n)], trainable_params=trainable)


def _best_of(
    run: Callable[[QuantumScript], object], tapes: Callable[[], QuantumScript], repeats: int
) -> float:
    """Best time of ``run`` over ``repeats`` fresh circuits of the same structure.

    Fresh parameters every time: a backend that keeps the states of its last forward
    pass (qstore.batched) answers a repeated circuit without simulating it. The
    minimum, because other processes only ever add time.
    """
    times = []
    for _ in range(repeats):
        tape = tapes()
        start = time.perf_counter()
        run(tape)
        times.append(time.perf_counter() - start)
    return min(times)


def measure_backend(spec: BackendSpec, level: str, rng: np.random.Generator) -> list[Sample]:
    """Samples of one backend, cheapest workloads first, within the level's time budget.

    Measuring stops once the budget is spent and the samples can be fitted (two
    widths, enough forward runs), so a slow backend costs little more than its budget.
    """
    widths, depths, batches, budget, repeats = LEVELS[level]
    widths = tuple(n for n in widths if n <= spec.capabilities.max_wires)
    adjoint = "adjoint" in spec.capabilities.derivatives
    workloads = sorted(
        itertools.product(widths, depths, batches), key=lambda w: (2 ** w[0] * w[1] * w[2], w)
    )
    deadline = time.perf_counter() + budget
    backends: dict[int, Backend] = {}
    samples: list[Sample] = []
    for n, layers, batch in workloads:
        if time.perf_counter() > deadline and _enough(samples):
            break
        backend = backends.setdefault(n, Backend(spec, n))
        tapes = partial(workload_tape, n, layers, batch, rng)
        runs: list[tuple[str | None, Callable[[QuantumScript], object]]] = [
            (None, partial(_execute, backend))
        ]
        if adjoint:
            dy = tuple(np.ones((n, batch)) if batch > 1 else np.ones(n))
            runs.append(("vjp", partial(_vjp, backend, dy)))
        for derivative, run in runs:
            warmup = tapes()
            run(warmup)  # compile, allocate, fill caches
            seconds = _best_of(run, tapes, repeats)
            samples.append(Sample(describe([warmup], derivative), seconds))
    return samples


def _execute(backend: Backend, tape: QuantumScript):
    return backend.execute([tape])


def _vjp(backend: Backend, dy, tape: QuantumScript):
    return backend.vjp([tape], [dy], "adjoint")


def _enough(samples: list[Sample]) -> bool:
    forward = [s for s in samples if s.features.derivative is None]
    return len(forward) >= 5 and len({s.features.num_wires for s in forward}) >= 2


def calibrate(
    specs: Sequence[BackendSpec],
    level: str = "quick",
    seed: int = 0,
    progress: Progress | None = None,
) -> Calibration:
    """Measure every local backend of ``specs`` and fit its time model.

    Backends that are not local simulators (cloud services) keep their models.
    ``progress`` receives one line as each backend starts and ends.
    """
    if level not in LEVELS:
        raise ValueError(f"calibration level {level!r} is not one of {sorted(LEVELS)}")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    models, checks = {}, {}
    local = [s for s in specs if _is_local(s)]
    for i, spec in enumerate(local, 1):
        began = time.perf_counter()
        if progress:
            progress(f"[{i}/{len(local)}] measuring {spec.name} ({level}) ...")
        samples = measure_backend(spec, level, rng)
        models[spec.name], checks[spec.name] = fit_and_check(samples, spec.time_model)
        if progress:
            check = checks[spec.name]
            progress(
                f"[{i}/{len(local)}] {spec.name}: {len(samples)} timings in "
                f"{time.perf_counter() - began:.1f} s, fit within {check.median_error:.0%} "
                f"(median; {check.rejected} outliers dropped)"
                + ("; poor fit: was the machine busy?" if check.poor else "")
            )
    return Calibration(
        models=models,
        level=level,
        seconds=time.perf_counter() - start,
        created=time.time(),
        fingerprint=machine_fingerprint(),
        levels=dict.fromkeys(models, level),
        checks=checks,
    )


def select_for_calibration(
    specs: Sequence[BackendSpec], names: Sequence[str] | None = None
) -> list[BackendSpec]:
    """The local backends of ``specs`` to calibrate: all, or those ``names`` asks for.

    Raises
    ------
    UnknownBackendError
        If a name is not one of the configured backends (the closest one is named).
    ConfigError
        If a named backend is a cloud service, or nothing is left to measure.
    """
    local = [s for s in specs if _is_local(s)]
    if names:
        by_name = {s.name: s for s in specs}
        for name in names:
            if name not in by_name:
                hint = did_you_mean(name, by_name)
                raise UnknownBackendError(
                    f"no backend {name!r} to calibrate.{hint} The configured local backends "
                    f"are: {', '.join(s.name for s in local) or 'none'}."
                )
            if not _is_local(by_name[name]):
                raise ConfigError(
                    f"{name!r} is a cloud service; only local simulators are calibrated "
                    f"({', '.join(s.name for s in local) or 'none configured'})"
                )
        local = [s for s in local if s.name in names]
    if not local:
        raise ConfigError(
            "no local simulator to calibrate: the config names none that is installed here "
            "(`qstore-pl backends` lists them)"
        )
    return local


def calibrate_and_save(
    specs: Sequence[BackendSpec], level: str, progress: Progress | None = None
) -> tuple[Calibration, Path]:
    """Calibrate ``specs`` and merge the models into this machine's cached calibration.

    The other backends' models in the cache are kept. Returns the merged calibration
    and its file. Raises ``OSError`` when the cache cannot be written.
    """
    fresh = calibrate(specs, level, progress=progress)
    path = calibration_path(fresh.fingerprint)
    cached = Calibration.load(path)
    merged = cached.merged(fresh) if cached is not None else fresh
    merged.save(path)
    return merged, path


def _is_local(spec: BackendSpec) -> bool:
    return any(
        spec.device_name == known.device_name and not known.remote and known.calibrated
        for known in KNOWN_BACKENDS.values()
    )


_announced = False


def apply_calibration(specs: list[BackendSpec], configured: str) -> list[BackendSpec]:
    """Specs with this machine's calibrated time models.

    With ``"auto"``, a machine without a calibration runs the quick one now and caches
    it (``qstore-pl calibrate`` replaces it with the full one); ``"off"`` keeps the
    built-in models. Each spec's ``time_model_source`` says which it got.
    """
    if calibration_mode(configured) == "off":
        return specs
    path = calibration_path(machine_fingerprint())
    calibration = Calibration.load(path)
    missing = [
        s
        for s in specs
        if _is_local(s) and (calibration is None or s.name not in calibration.models)
    ]
    if missing:
        _announce(missing, path)
        fresh = calibrate(missing, "quick")
        calibration = calibration.merged(fresh) if calibration is not None else fresh
        try:
            calibration.save(path)
        except OSError as err:  # a read-only home still routes, just calibrates again
            logger.warning("cannot cache the calibration at %s: %s", path, err)
    if calibration is None:  # no local backend to measure, none measured before
        return specs
    return [
        s.with_time_model(
            calibration.models[s.name], f"measured ({calibration.level_of(s.name)} calibration)"
        )
        if s.name in calibration.models
        else s
        for s in specs
    ]


def _announce(missing: Sequence[BackendSpec], path: Path) -> None:
    """Say once per process, in one line, why the first router takes a few seconds."""
    global _announced
    if _announced:
        return
    _announced = True
    logger.warning(
        "qstore.router: calibrating %s on this machine (first use, about 20 s; cached in "
        "%s; `qstore-pl calibrate` for the full calibration, QSTORE_CALIBRATION=off to skip)",
        ", ".join(s.name for s in missing),
        path.parent,
    )
