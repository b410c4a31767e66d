"""``TrainingConfig``: everything a :class:`~qstore_pl.model.QuantumModel` needs to
know before it trains, checked when it is made.

A wrong value fails here, naming the field and the fix, rather than minutes later
inside a framework or on a paid backend.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from qstore_pl.exceptions import ConfigError
from qstore_pl.layers.circuit import LayerCircuit
from qstore_pl.support.secret import SECRET_KEY_PATTERN

FRAMEWORKS = ("torch", "keras", "jax")
GRADIENTS = ("auto", "adjoint", "parameter-shift", "spsa")


class TrainingConfigError(ConfigError):
    """A :class:`TrainingConfig` field has a value it cannot take."""


@dataclass(frozen=True)
class TrainingConfig:
    """How to build and train a quantum classifier.

    Parameters
    ----------
    n_qubits, depth : int
        Circuit width and number of ansatz layers.
    batch_size, epochs : int
        Samples per training step, passes over the data.
    framework : {"torch", "keras", "jax"}
        What trains it: a torch ``nn.Module`` loop, a Keras model, or optax.
    learning_rate : float
        Adam's step size.
    encoding : {"angle", "amplitude"}
        How features enter the circuit (see :class:`~qstore_pl.layers.circuit.LayerCircuit`).
    ansatz : {"hardware_efficient", "strongly_entangling", "reuploading"}
        The trainable part of the circuit.
    backend : str or Mapping
        ``"qstore.router"`` (default), another PennyLane device name, a router config
        dict, or the path of a router config file (``.yaml``, ``.yml``, ``.toml``).
    shots : int or None
        Shots per circuit; ``None`` computes exact expectation values (simulators).
        Cloud backends (IonQ) need shots.
    budget : float or None
        Most USD the whole run may cost; ``fit`` refuses a run whose quote is higher.
    gradient : {"auto", "adjoint", "parameter-shift", "spsa"}
        ``"auto"``: adjoint without shots; with shots the parameter-shift rule when
        the budget allows it, SPSA otherwise.
    checkpoint_dir : str or None
        Where a checkpoint is written after every epoch; ``fit`` resumes from it.
    seed : int
        Seeds the initial weights, the order of the batches and SPSA's directions.
    """

    n_qubits: int = 4
    depth: int = 2
    batch_size: int = 16
    epochs: int = 3
    framework: str = "torch"
    learning_rate: float = 0.05
    encoding: str = "angle"
    ansatz: str = "hardware_efficient"
    backend: str | Mapping[str, Any] = "qstore.router"
    shots: int | None = None
    budget: float | None = None
    gradient: str = "auto"
    checkpoint_dir: str | None = None
    seed: int = 0

    def __post_init__(self):
        for name, low in (("n_qubits", 1), ("depth", 1), ("batch_size", 1), ("epochs", 1)):
            _integer(name, getattr(self, name), low)
        _one_of("framework", self.framework, FRAMEWORKS)
        _one_of("gradient", self.gradient, GRADIENTS)
        self.circuit()  # the circuit's own checks: encoding, ansatz and their combination
        rate = self.learning_rate
        if not _real(rate) or not 0 < rate < float("inf"):
            raise TrainingConfigError(
                f"learning_rate must be a positive number, got {rate!r}; e.g. learning_rate=0.05"
            )
        object.__setattr__(self, "learning_rate", float(rate))
        if self.shots is not None:
            _integer("shots", self.shots, 1, hint="or shots=None for exact expectation values")
        if self.budget is not None:
            if not _real(self.budget) or not 0 <= self.budget < float("inf"):
                raise TrainingConfigError(
                    f"budget must be a non-negative number of USD or None, got {self.budget!r}"
                )
            object.__setattr__(self, "budget", float(self.budget))
        if self.gradient == "adjoint" and self.shots is not None:
            raise TrainingConfigError(
                "gradient='adjoint' needs exact simulation: set shots=None, or use "
                "gradient='parameter-shift' or 'spsa' with shots"
            )
        _integer("seed", self.seed, 0)
        self._check_backend()
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)):
                raise TrainingConfigError(
                    f"checkpoint_dir must be a folder path or None, got {self.checkpoint_dir!r}"
                )
            object.__setattr__(self, "checkpoint_dir", os.fspath(self.checkpoint_dir))

    def _check_backend(self) -> None:
        backend = self.backend
        if isinstance(backend, os.PathLike):
            backend = os.fspath(backend)
            object.__setattr__(self, "backend", backend)
        if isinstance(backend, Mapping):
            object.__setattr__(self, "backend", dict(backend))
            return
        if not isinstance(backend, str) or not backend:
            raise TrainingConfigError(
                f"backend must be a device name (e.g. 'qstore.router'), a router config dict "
                f"or a config file path, got {backend!r}"
            )
        if is_config_path(backend) and not os.path.isfile(backend):
            raise TrainingConfigError(f"backend config file {backend!r} does not exist")

    # ------------------------------------------------------------- helpers
    def circuit(self) -> LayerCircuit:
        """The model's circuit."""
        try:
            return LayerCircuit(
                self.n_qubits, self.depth, encoding=self.encoding, ansatz=self.ansatz
            )
        except ValueError as err:
            raise TrainingConfigError(str(err)) from None

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with ``changes`` (validated again)."""
        return TrainingConfig(**{**self.to_dict(keep_secrets=True), **changes})

    def to_dict(self, keep_secrets: bool = False) -> dict[str, Any]:
        """JSON-able fields. Without ``keep_secrets`` an API key written into a router
        config is left out (the loaded model reads it from the environment again)."""
        out = asdict(self)
        if isinstance(self.backend, Mapping) and not keep_secrets:
            out["backend"] = _without_secrets(self.backend)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainingConfigError(
                f"unknown TrainingConfig field(s) {unknown}; valid fields: {sorted(known)}"
            )
        return cls(**values)


def is_config_path(backend: str) -> bool:
    """Whether a ``backend`` string names a router config file."""
    return backend.lower().endswith((".yaml", ".yml", ".toml"))


def _without_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _without_secrets(v)
            for k, v in value.items()
            if not SECRET_KEY_PATTERN.search(str(k))
        }
    if isinstance(value, (list, tuple)):
        return [_without_secrets(v) for v in value]
    return value


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(name: str, value: Any, low: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        extra = f" ({hint})" if hint else ""
        raise TrainingConfigError(
            f"{name} must be an integer of at least {low}, got {value!r}; "
            f"e.g. {name}={max(low, 1)}{extra}"
        )


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise TrainingConfigError(f"{name} must be one of {allowed}, got {value!r}")
