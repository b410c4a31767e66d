"""IonQ's hardware noise models, from public gate fidelities: one source of the numbers.

The offline IonQ emulator mixes a job's exact distribution with the uniform one by the
circuit's estimated error (a global depolarising model, as IonQ's cloud simulator
describes its ``noise_model``); the router's hardware rehearsals put a depolarising
channel after every native gate of the compiled circuit (:func:`depolarizing_after`).
Both read the error rates below. They are rough: real devices also have readout
(SPAM) error, crosstalk and drift, which neither models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GateErrors:
    """Average gate infidelities (``1 - F_avg``) of one device's native gates.

    Attributes
    ----------
    one_qubit : float
        Of a single-qubit gate (GPI, GPI2).
    two_qubit : float
        Of the entangling gate (MS).
    """

    one_qubit: float
    two_qubit: float

    def depolarizing_1q(self) -> float:
        """``p`` of ``qml.DepolarizingChannel(p)`` after a single-qubit gate.

        That channel's average fidelity is ``1 - 2p/3``, so ``p = 3/2 * one_qubit``.
        """
        return 1.5 * self.one_qubit

    def depolarizing_2q(self) -> float:
        """``p`` of the ``qml.DepolarizingChannel(p)`` put on each qubit of an MS gate.

        Two single-qubit channels have process fidelity ``(1 - p)**2`` and average
        fidelity ``(4 (1 - p)**2 + 1) / 5`` (dimension 4), which equals
        ``1 - two_qubit`` for the ``p`` returned.
        """
        return 1.0 - math.sqrt(1.0 - 1.25 * self.two_qubit)


#: Per-gate error rates of IonQ's noise models (the names IonQ's ``noise_model`` takes).
HARDWARE_NOISE: dict[str, GateErrors] = {
    "ideal": GateErrors(0.0, 0.0),
    "harmony": GateErrors(1e-3, 3e-2),
    "aria-1": GateErrors(5e-4, 6e-3),
    "aria-2": GateErrors(5e-4, 6e-3),
    "forte-1": GateErrors(2e-4, 4e-3),
    "forte-enterprise-1": GateErrors(2e-4, 4e-3),
}


def gate_errors(name: str) -> GateErrors:
    """The error rates of a named noise model.

    Raises
    ------
    KeyError
        If no model has that name; the message lists the known ones.
    """
    try:
        return HARDWARE_NOISE[name]
    except KeyError:
        raise KeyError(
            f"unknown noise model {name!r}; known: {', '.join(HARDWARE_NOISE)}"
        ) from None
