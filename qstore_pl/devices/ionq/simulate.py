"""Run IonQ API circuits (JSON gate lists) on PennyLane's default.qubit.

IonQ numbers basis states with qubit 0 as the least significant bit; PennyLane with
wire 0 as the most significant. :func:`ionq_probabilities` returns IonQ's numbering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pennylane as qml

from qstore_pl.circuits.ionq_format import gate_operators
from qstore_pl.devices.ionq.noise_models import HARDWARE_NOISE

#: IonQ's noise models, by name (the numbers live in :mod:`qstore_pl.devices.ionq.noise_models`).
NOISE_MODELS = HARDWARE_NOISE


class CircuitError(ValueError):
    """A circuit in a job cannot be simulated (bad gate, wire, or parameter)."""


def to_operations(gate: Mapping[str, Any], qubits: int) -> list[qml.operation.Operator]:
    """The PennyLane operations for one IonQ JSON gate (qis, or native gpi/gpi2/ms,
    whatever the job's ``gateset`` says, as IonQ's simulator does)."""
    gateset = "native" if gate.get("gate") in ("gpi", "gpi2", "ms") else "qis"
    return gate_operators(gate, gateset, qubits, "gate")


def gate_counts(circuit: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(1q, 2q) gate counts of a JSON circuit."""
    two = sum(
        1
        for g in circuit
        if ("targets" in g and len(g["targets"]) > 1) or "control" in g or "controls" in g
    )
    return len(circuit) - two, two


def ionq_probabilities(
    circuit: Sequence[Mapping[str, Any]],
    qubits: int,
    noise: str | None = None,
    shots: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Probabilities of a JSON circuit, keyed as IonQ keys them (nonzero entries only).

    With a noise model the exact distribution is mixed with the uniform one by the
    circuit's estimated error (global depolarising, a rough model), and with ``shots``
    the result is a sampled histogram, as hardware returns.
    """
    try:
        ops = [op for g in circuit for op in to_operations(g, qubits)]
        tape = qml.tape.QuantumScript(ops, [qml.probs(wires=range(qubits))])
        probs = np.asarray(qml.device("default.qubit", wires=qubits).execute(tape))
    except (KeyError, TypeError, ValueError, qml.exceptions.WireError) as err:
        raise CircuitError(f"cannot simulate circuit: {err}") from err
    if noise is not None:
        e1, e2 = NOISE_MODELS[noise].one_qubit, NOISE_MODELS[noise].two_qubit
        n1, n2 = gate_counts(circuit)
        fidelity = (1 - e1) ** n1 * (1 - e2) ** n2
        probs = fidelity * probs + (1 - fidelity) / probs.size
    if shots:
        rng = rng or np.random.default_rng()
        probs = rng.multinomial(shots, probs / probs.sum()) / shots
    order = np.arange(2**qubits)
    ionq_keys = [int(format(i, f"0{qubits}b")[::-1], 2) for i in order]
    return {str(k): float(p) for k, p in zip(ionq_keys, probs) if p > 0}
