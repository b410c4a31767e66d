"""How the router sees an IonQ backend: capabilities and a time model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstore_pl.devices.ionq.connection import api_key
from qstore_pl.devices.ionq.device import QIS_GATES
from qstore_pl.exceptions import ConfigError
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.time_model import TimeModel
from qstore_pl.support.secret import quoted
from qstore_pl.support.suggest import did_you_mean

#: Qubits per IonQ target (the cloud simulator takes 29).
TARGET_QUBITS = {
    "simulator": 29,
    "qpu.aria-1": 25,
    "qpu.aria-2": 25,
    "qpu.forte-1": 36,
    "qpu.forte-enterprise-1": 36,
}
GATESETS = ("qis", "native")
_OBSERVABLES = frozenset({"PauliX", "PauliY", "PauliZ", "Hadamard", "Identity", "Prod"})
_SAMPLED = frozenset({"expval", "var", "probs", "sample", "counts"})

# Remote backends: a round trip and a queue per job dominate; hardware takes about a
# millisecond per shot-circuit more. The router adds the reported queue time.
_TIME_MODELS = {
    "simulator": TimeModel(per_batch=1.0, per_circuit=0.02, per_gate=0.0, per_gate_amplitude=0.0),
    "qpu": TimeModel(per_batch=60.0, per_circuit=1.0, per_gate=0.0, per_gate_amplitude=0.0),
}


def build_ionq(options: Mapping[str, Any]) -> tuple[BackendCapabilities, TimeModel]:
    """Capabilities and time model of an IonQ backend with ``options``.

    Raises
    ------
    ConfigError
        If no API key is configured or in the environment, or the target or gate
        set is not one IonQ has (the message names the closest).
    """
    api_key(options.get("api_key"))  # fail at configuration time, not at the first job
    target = options.get("target", "simulator")
    _check_choice("target", target, TARGET_QUBITS)
    _check_choice("gateset", options.get("gateset", "qis"), GATESETS)
    caps = BackendCapabilities(
        max_wires=TARGET_QUBITS.get(target, 25),
        operations=QIS_GATES,
        observables=_OBSERVABLES,
        measurements=frozenset(),
        sampled_measurements=_SAMPLED,
        analytic=False,
        finite_shots=True,
        dtype="complex128",
    )
    return caps, _TIME_MODELS["simulator" if target == "simulator" else "qpu"]


def _check_choice(option: str, value: Any, choices) -> None:
    """Raise :class:`ConfigError` naming the closest valid value if ``value`` is not one."""
    if value in choices:
        return
    hint = did_you_mean(value, choices)
    raise ConfigError(
        f"IonQ {option} {quoted(value)} is not known.{hint} Valid: {', '.join(choices)}."
    )
