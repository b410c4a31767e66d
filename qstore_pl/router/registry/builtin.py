"""The registry of local simulator backends the router knows how to build.

Each entry turns a backend config into a :class:`~qstore_pl.router.routing.spec.BackendSpec`:
which PennyLane device to build, its capabilities (read from the device's own TOML
capability file where it has one) and a default time model.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pennylane.devices.capabilities import DeviceCapabilities, ExecutionCondition

from qstore_pl.exceptions import ConfigError, UnknownBackendError
from qstore_pl.router.config import AUTO, BackendConfig
from qstore_pl.router.registry.own import build_device, device_class
from qstore_pl.router.registry.sizing import max_wires_for_memory
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.router.routing.time_model import TimeModel
from qstore_pl.support.secret import quoted
from qstore_pl.support.suggest import did_you_mean

# Names PennyLane's capability files use for measurement processes.
_MP_KINDS = {
    "ExpectationMP": "expval",
    "VarianceMP": "var",
    "ProbabilityMP": "probs",
    "SampleMP": "sample",
    "CountsMP": "counts",
    "StateMP": "state",
    "DensityMatrixMP": "density_matrix",
}

# Methods that run mid-circuit measurements on the device itself.
_NATIVE_MCM_METHODS = {"one-shot", "tree-traversal", "device"}

# Measured on a 2-core x86 machine (W1 circuits, 2-20 qubits); calibration refines
# them per machine.
_TIME_MODELS = {
    "lightning": TimeModel(
        per_batch=2e-4,
        per_circuit=1e-4,
        per_gate=9e-6,
        per_gate_amplitude=1.2e-9,
        per_measurement_amplitude=1e-9,
    ),
    "lightning64": TimeModel(
        per_batch=2e-4,
        per_circuit=1e-4,
        per_gate=8e-6,
        per_gate_amplitude=3.5e-10,
        per_measurement_amplitude=5e-10,
    ),
    "qsim": TimeModel(
        per_batch=2e-4,
        per_circuit=1e-4,
        per_gate=2e-6,
        per_gate_amplitude=1e-10,
        per_measurement_amplitude=5e-10,
        vectorised=False,
    ),
    "batched": TimeModel(
        per_batch=4e-4,
        per_circuit=1e-5,
        per_gate=2e-5,
        per_gate_amplitude=6e-10,
        per_measurement_amplitude=5e-10,
        vectorised=True,
    ),
    "batched64": TimeModel(
        per_batch=4e-4,
        per_circuit=1e-5,
        per_gate=2e-5,
        per_gate_amplitude=3.5e-10,
        per_measurement_amplitude=3e-10,
        vectorised=True,
    ),
    "default": TimeModel(
        per_batch=2e-4,
        per_circuit=2e-4,
        per_gate=7.5e-5,
        per_gate_amplitude=6e-9,
        per_measurement_amplitude=4e-9,
        vectorised=True,
    ),
}


def capabilities_from_toml(path: str | os.PathLike[str], **overrides: Any) -> BackendCapabilities:
    """Backend capabilities from a PennyLane device-capabilities TOML file."""
    caps = DeviceCapabilities.from_toml_file(path)
    analytic, sampled = set(), set()
    for mp_name, conditions in caps.measurement_processes.items():
        kind = _MP_KINDS.get(mp_name, mp_name)
        if ExecutionCondition.FINITE_SHOTS_ONLY not in conditions:
            analytic.add(kind)
        if ExecutionCondition.ANALYTIC_MODE_ONLY not in conditions:
            sampled.add(kind)
    operations = set(caps.gate_set())
    if caps.initial_state_prep:
        operations |= {"StatePrep", "BasisState"}
    if _NATIVE_MCM_METHODS & set(caps.supported_mcm_methods):
        # "deferred" alone means the device cannot run a mid-circuit measurement
        # itself (the router defers them before routing when that method is chosen)
        operations |= {"MidMeasureMP", "Conditional"}
    fields: dict[str, Any] = {
        "operations": frozenset(operations),
        "observables": frozenset(caps.observables),
        "measurements": frozenset(analytic),
        "sampled_measurements": frozenset(sampled),
        "differentiable_operations": frozenset(caps.gate_set(differentiable=True)),
    }
    fields.update(overrides)
    return BackendCapabilities(**fields)


def _lightning(device_name: str) -> Callable[[Mapping[str, Any]], tuple]:
    def build(options: Mapping[str, Any]):
        import pennylane as qml

        dtype = str(getattr(options.get("c_dtype"), "__name__", options.get("c_dtype")))
        single = dtype == "complex64"
        path = qml.device(device_name, wires=1, **options).config_filepath
        caps = capabilities_from_toml(
            path,
            max_wires=max_wires_for_memory(8 if single else 16),
            dtype="complex64" if single else "complex128",
            derivatives={"adjoint": frozenset({"expval"})},
        )
        return caps, _TIME_MODELS["lightning64" if single else "lightning"]

    return build


def _qsim(options: Mapping[str, Any]):
    from qstore_pl.devices.qsim import QsimDevice

    caps = capabilities_from_toml(
        QsimDevice.config_filepath,
        max_wires=max_wires_for_memory(8),
        max_matrix_wires=6,
        dtype="complex64",
        broadcasting=True,
        derivatives={"parameter-shift": frozenset({"expval", "probs"})},
    )
    return caps, _TIME_MODELS["qsim"]


def _batched(options: Mapping[str, Any]):
    from qstore_pl.devices.batched import BatchedDevice

    single = np.dtype(options.get("c_dtype", np.complex128)) == np.complex64
    caps = capabilities_from_toml(
        BatchedDevice.config_filepath,
        max_wires=max_wires_for_memory(8 if single else 16, fraction=0.1),
        dtype="complex64" if single else "complex128",
        broadcasting=True,
        broadcast_derivatives=True,
        keeps_forward_states=True,
        derivatives={"adjoint": frozenset({"expval", "probs"})},
    )
    return caps, _TIME_MODELS["batched64" if single else "batched"]


def _default_qubit(options: Mapping[str, Any]):
    caps = BackendCapabilities(
        max_wires=max_wires_for_memory(16, fraction=0.25),  # numpy makes temporaries
        operations=None,
        observables=None,
        measurements=None,
        sampled_measurements=None,
        dtype="complex128",
        broadcasting=True,
        derivatives={"adjoint": frozenset({"expval", "state"})},
        backprop=True,
    )
    return caps, _TIME_MODELS["default"]


def _default_mixed(options: Mapping[str, Any]):
    from qstore_pl.router.registry.noisy import build_default_mixed

    return build_default_mixed(options)


def _aer(options: Mapping[str, Any]):
    from qstore_pl.router.registry.noisy import build_aer

    return build_aer(options)


def _ionq(options: Mapping[str, Any]):
    from qstore_pl.router.registry.ionq import build_ionq  # pennylane-ionq is imported late

    return build_ionq(options)


@dataclass(frozen=True)
class _Known:
    """How to build one backend type."""

    device_name: str
    build: Callable[[Mapping[str, Any]], tuple[BackendCapabilities, TimeModel]]
    module: str | None  # must be importable for the backend to be usable
    direct: bool = False  # runs the router's circuits without its own preprocessing
    remote: bool = False  # a cloud service: not measured by calibration
    calibrated: bool = True  # False: its time model is not fitted to the pure-state workload


#: Backend types the router can build.
KNOWN_BACKENDS: dict[str, _Known] = {
    "lightning.qubit": _Known(
        "lightning.qubit", _lightning("lightning.qubit"), "pennylane_lightning"
    ),
    "lightning.kokkos": _Known(
        "lightning.kokkos",
        _lightning("lightning.kokkos"),
        "pennylane_lightning.lightning_kokkos_ops",
    ),
    "lightning.gpu": _Known(
        "lightning.gpu", _lightning("lightning.gpu"), "pennylane_lightning.lightning_gpu_ops"
    ),
    "qstore.qsim": _Known("qstore.qsim", _qsim, "qsimcirq"),
    "qstore.batched": _Known("qstore.batched", _batched, "numba", direct=True),
    "default.qubit": _Known("default.qubit", _default_qubit, None),
    "default.mixed": _Known("default.mixed", _default_mixed, None, calibrated=False),
    "qstore.aer": _Known("qstore.aer", _aer, "qiskit_aer", calibrated=False),
    "ionq": _Known("qstore.ionq", _ionq, "pennylane_ionq", remote=True),
}

#: Local simulators used when the config says ``"auto"``, in order of preference.
AUTO_BACKENDS = (
    BackendConfig("lightning.gpu", "lightning.gpu"),
    BackendConfig("lightning.kokkos", "lightning.kokkos"),
    BackendConfig("lightning.qubit", "lightning.qubit"),
    BackendConfig("qstore.batched", "qstore.batched"),
    BackendConfig("qstore.batched.c64", "qstore.batched", {"c_dtype": "complex64"}),
    BackendConfig("qstore.qsim", "qstore.qsim"),
    BackendConfig("default.qubit", "default.qubit"),
    # for circuits with noise only
    BackendConfig("qstore.aer", "qstore.aer"),
    BackendConfig("qstore.aer.trajectories", "qstore.aer", {"method": "statevector"}),
    BackendConfig("default.mixed", "default.mixed"),
)


def build_spec(entry: BackendConfig) -> BackendSpec:
    """The spec of one configured backend.

    Raises
    ------
    UnknownBackendError
        If the type is not a known backend.
    ConfigError
        If the backend is known but cannot be built with the given options.
    """
    try:
        known = KNOWN_BACKENDS[entry.type]
    except KeyError:
        hint = did_you_mean(entry.type, [*KNOWN_BACKENDS, AUTO])
        raise UnknownBackendError(
            f"unknown backend {quoted(entry.type)}.{hint} Known backends: "
            f"{', '.join([*KNOWN_BACKENDS, AUTO])}."
        ) from None
    check_options(entry, known.device_name)
    try:
        options = _device_options(entry.options)
        capabilities, time_model = known.build(options)
    except ConfigError:
        raise
    except Exception as err:  # the device rejected its options
        raise ConfigError(
            f"backend {entry.name!r} ({entry.type}) cannot be built with options "
            f"{quoted(dict(entry.options))}: {err}"
        ) from err
    spec = BackendSpec(
        name=entry.name,
        device_name=known.device_name,
        capabilities=capabilities,
        time_model=time_model,
        device_kwargs=options,
        direct=known.direct,
    )
    if entry.noise_model is not None:
        from qstore_pl.router.execution.rehearsal import for_rehearsal

        spec = for_rehearsal(spec, entry, density_matrix=bool(capabilities.channels))
    return spec


def check_options(entry: BackendConfig, device_name: str) -> None:
    """Reject options the backend's device does not take, naming the closest valid one.

    The valid options are the keyword arguments of the device class's ``__init__``
    (without ``wires``, which the router sets), so a misspelt option fails here instead
    of at the first execution.

    Raises
    ------
    ConfigError
        If an option is not a keyword argument of the device.
    """
    valid = device_options(device_name)
    if valid is None:
        return  # not installed, or takes **kwargs: building it says what is wrong
    for key in entry.options:
        if key in valid:
            continue
        if key == "wires":
            fix = "the router sets each backend's wires; remove 'wires' from the options"
        else:
            hint = did_you_mean(key, valid, "did you mean {!r}? ")
            fix = f"{hint}valid options of {device_name}: {', '.join(valid)}"
        raise ConfigError(
            f"backend {entry.name!r} ({entry.type}) cannot be built with options "
            f"{quoted(dict(entry.options))}: unknown option {quoted(key)}; {fix}"
        )


@functools.cache
def device_options(device_name: str) -> tuple[str, ...] | None:
    """Keyword arguments a PennyLane device's ``__init__`` takes (``wires`` aside), or
    ``None`` if the device is not installed or takes arbitrary ``**kwargs``."""
    try:
        cls = device_class(device_name)
        if cls is None:
            return None
        parameters = inspect.signature(cls).parameters.values()
    except Exception:  # a plugin that cannot be imported here: building it will say so
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    skip = {"self", "wires"}
    return tuple(
        p.name
        for p in parameters
        if p.name not in skip and p.kind is not inspect.Parameter.VAR_POSITIONAL
    )


def _device_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Backend options as the device takes them.

    lightning accepts ``c_dtype`` only as a numpy type and fails at the first execution
    when given the string a YAML/TOML config holds ("complex64").
    """
    options = dict(options)
    if isinstance(options.get("c_dtype"), str):
        options["c_dtype"] = np.dtype(options["c_dtype"]).type
    return options


@functools.cache
def is_usable(backend_type: str) -> bool:
    """Whether a known backend is installed and can start on this machine."""
    known = KNOWN_BACKENDS[backend_type]
    try:
        if known.module is not None and importlib.util.find_spec(known.module) is None:
            return False
        build_device(known.device_name, 1)
    except Exception:  # not installed, no GPU, driver mismatch: not usable here
        return False
    return True


def _auto_spec(entry: BackendConfig) -> BackendSpec:
    from qstore_pl.router.registry.noisy import DENSITY_MATRIX_TYPES, noise_only

    spec = build_spec(entry)
    return noise_only(spec) if entry.type in DENSITY_MATRIX_TYPES else spec


def resolve_backends(entries: Sequence[BackendConfig]) -> list[BackendSpec]:
    """Specs for the configured backends, ``"auto"`` expanded to the usable local ones."""
    specs: list[BackendSpec] = []
    for entry in entries:
        if entry.type == AUTO:
            specs.extend(_auto_spec(e) for e in AUTO_BACKENDS if is_usable(e.type))
        else:
            specs.append(build_spec(entry))
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"backend names must be unique, {repeated} appear twice (an explicit entry "
            "and 'auto'?); give the explicit entry another 'name'"
        )
    return specs
