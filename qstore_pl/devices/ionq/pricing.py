"""Pricing models: what one job of circuits costs on a backend, in USD.

Three models cover the public price lists (see DESIGN.md, "Public prices"):

- ``per_gate_shot``: IonQ's formula as sold on Azure Quantum,
  ``max(minimum, sum over circuits of shots * (cost_1q * N1q + cost_2q * N2q))`` per job;
  defaults for Aria: 0.000220 and 0.000975 USD, minimum 12.4166 USD per job without
  error mitigation, 97.50 with it.
- ``per_task_shot``: the Amazon Braket formula, ``per_task + per_shot * shots`` for every
  circuit (a Braket task); defaults 0.30 USD per task, 0.03 USD per shot (Aria), 0.08
  (Forte).
- ``free``: simulators (IonQ's cloud simulator is free up to 29 qubits).

Every number can be overridden in the backend's ``pricing`` config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from qstore_pl.exceptions import ConfigError
from qstore_pl.support.secret import quoted

#: Azure Quantum's IonQ Aria numbers.
ARIA_COST_1Q = 0.000220
ARIA_COST_2Q = 0.000975
ARIA_MINIMUM = 12.4166
ARIA_MINIMUM_ERROR_MITIGATION = 97.50
#: Amazon Braket's IonQ numbers.
BRAKET_PER_TASK = 0.30
BRAKET_PER_SHOT = {"aria": 0.03, "forte": 0.08}


@dataclass(frozen=True)
class PricingModel:
    """A price list.

    Attributes
    ----------
    model : {"per_gate_shot", "per_task_shot", "free"}
        Which formula applies.
    cost_1q, cost_2q : float
        USD per single-/two-qubit gate per shot (``per_gate_shot``).
    minimum : float
        Least USD charged per job (``per_gate_shot``).
    per_task, per_shot : float
        USD per circuit and per shot (``per_task_shot``).
    """

    model: str = "free"
    cost_1q: float = 0.0
    cost_2q: float = 0.0
    minimum: float = 0.0
    per_task: float = 0.0
    per_shot: float = 0.0

    @property
    def is_free(self) -> bool:
        """Whether nothing is ever charged."""
        return self.model == "free"

    def job_cost(self, circuits: int, shots: int, one_qubit: int, two_qubit: int) -> float:
        """USD for one job of ``circuits`` circuits with the given gates and shots each.

        Parameters
        ----------
        circuits : int
            Circuits in the job (all of one structure).
        shots : int
            Shots per circuit.
        one_qubit, two_qubit : int
            Gates per circuit, as submitted (after native compilation where it applies).
        """
        if circuits <= 0 or self.is_free:
            return 0.0
        if self.model == "per_task_shot":
            return circuits * (self.per_task + self.per_shot * shots)
        gate_shots = circuits * shots * (self.cost_1q * one_qubit + self.cost_2q * two_qubit)
        return max(self.minimum, gate_shots)

    def describe(self) -> str:
        """The formula with its numbers, in words."""
        if self.is_free:
            return "free"
        if self.model == "per_task_shot":
            return f"{self.per_task} USD/task + {self.per_shot} USD/shot"
        return (
            f"max({self.minimum} USD, shots x ({self.cost_1q} x N1q + {self.cost_2q} x N2q)) "
            "USD per job"
        )


FREE = PricingModel()
_MODELS = ("per_gate_shot", "per_task_shot", "free")


def default_pricing(target: str | None, error_mitigation: bool = False) -> PricingModel:
    """Public prices for an IonQ target (``"simulator"``, ``"qpu.aria-1"``, ...).

    Local simulators and IonQ's cloud simulator are free; Aria targets use the
    per-gate-shot formula, Forte targets Braket's per-task-and-shot prices (IonQ sells
    Forte direct only under contract).
    """
    if not target or not target.startswith("qpu"):
        return FREE
    if "forte" in target:
        return PricingModel(
            "per_task_shot", per_task=BRAKET_PER_TASK, per_shot=BRAKET_PER_SHOT["forte"]
        )
    minimum = ARIA_MINIMUM_ERROR_MITIGATION if error_mitigation else ARIA_MINIMUM
    return PricingModel(
        "per_gate_shot", cost_1q=ARIA_COST_1Q, cost_2q=ARIA_COST_2Q, minimum=minimum
    )


def parse_pricing(
    value: Mapping[str, Any] | None, default: PricingModel, where: str
) -> PricingModel:
    """A backend's ``pricing`` config on top of its default prices.

    Raises
    ------
    ConfigError
        On unknown keys, an unknown model or a negative or non-numeric price.
    """
    if value is None:
        return default
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a dict such as {{'model': 'per_gate_shot'}}")
    allowed = [f.name for f in fields(PricingModel)]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {quoted(unknown)} in {where}; valid keys: {allowed}")
    model = value.get("model", default.model)
    if model not in _MODELS:
        raise ConfigError(f"{where}['model'] = {quoted(model)}; choose one of {_MODELS}")
    base = default if model == default.model else PricingModel(model)
    numbers = {}
    for key in allowed[1:]:
        number = value.get(key, getattr(base, key))
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
            raise ConfigError(
                f"{where}[{key!r}] = {quoted(number)}; use a non-negative number (USD)"
            )
        numbers[key] = float(number)
    return PricingModel(model, **numbers)
