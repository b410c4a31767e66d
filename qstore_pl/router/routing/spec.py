"""Backend specifications: one backend as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from qstore_pl.devices.ionq.pricing import FREE, PricingModel
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.time_model import TimeModel


@dataclass(frozen=True)
class BackendSpec:
    """A backend the router may choose.

    Attributes
    ----------
    name : str
        Name the router reports and configs refer to (unique per router).
    device_name : str
        PennyLane device that executes the circuits (``qml.device(device_name, ...)``).
    device_kwargs : Mapping[str, Any]
        Extra keyword arguments for that device.
    capabilities : BackendCapabilities
        What the backend can run.
    time_model : TimeModel
        How long it takes.
    direct : bool
        Whether the device executes the router's preprocessed circuits as they are,
        without its own preprocessing (qstore's batched engine).
    pricing : PricingModel
        What a job costs (free for local simulators).
    use_for : frozenset[str] or None
        Purposes the backend serves; ``None`` means every purpose.
    max_queue_seconds : float or None
        Skip the backend while its queue is longer.
    metered : bool
        Whether its jobs are recorded in the spending ledger (cloud backends).
    hardware : bool
        Whether it is a quantum computer rather than a simulator.
    time_model_source : str
        Where ``time_model`` comes from: ``"built-in"`` or measured on this machine.
    noise_model : str or None
        A named hardware noise model (``"aria-1"``): the backend rehearses the QPU run,
        native gates and their noise (see :mod:`qstore_pl.router.execution.rehearsal`).
    """

    name: str
    device_name: str
    capabilities: BackendCapabilities
    time_model: TimeModel = field(default_factory=TimeModel)
    device_kwargs: Mapping[str, Any] = field(default_factory=dict)
    direct: bool = False
    pricing: PricingModel = FREE
    use_for: frozenset[str] | None = None
    max_queue_seconds: float | None = None
    metered: bool = False
    hardware: bool = False
    time_model_source: str = "built-in"
    noise_model: str | None = None

    def with_time_model(self, time_model: TimeModel, source: str = "measured") -> BackendSpec:
        """A copy of this spec with another time model, and where that model comes from."""
        return replace(self, time_model=time_model, time_model_source=source)
