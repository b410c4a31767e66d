"""Analytic measurements of qsim results.

Expectation values and variances of observables with a Pauli representation (Pauli
words, Pauli sums, Hamiltonians of them) are computed by qsim's C++ expectation
routine: one pass over the state per Pauli sum, without copying the state into
Python. A tape measuring only those never materialises the state in Python at all.
Every other measurement (probabilities, the state, density matrices, Hermitian and
projector observables, ...) is computed by PennyLane's own measurement functions on
the final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pennylane.devices.qubit.measure import measure
from pennylane.measurements import ExpectationMP, MeasurementProcess, VarianceMP
from pennylane.pauli import PauliSentence
from pennylane.tape import QuantumScript

from qstore_pl.devices.qsim.simulator import OpSum
from qstore_pl.devices.qsim.translate import QSIM

_PAULI_KINDS = {"X": QSIM.kX, "Y": QSIM.kY, "Z": QSIM.kZ}

#: Variances need <O^2>, a Pauli sum of up to k^2 terms for k terms in O: beyond this
#: many terms, computing it on the state in Python is cheaper.
MAX_VARIANCE_TERMS = 64


def pauli_opsum(sentence: PauliSentence, num_qubits: int) -> OpSum:
    """A Pauli sentence on wires ``0 .. n-1`` as a qsim Pauli sum."""
    strings, width = [], 0
    for word, coeff in sentence.items():
        string = QSIM.OpString()
        string.weight = complex(coeff)
        for wire, pauli in word.items():
            QSIM.add_gate_to_opstring(_PAULI_KINDS[pauli], [num_qubits - 1 - wire], string)
        strings.append(string)
        width = max(width, len(word))
    # qsim computes sums of strings on <= 6 qubits in place, wider ones on a copy
    return strings, width


def _norm_opsum() -> OpSum:
    """``<psi|psi>`` as a qsim Pauli sum (an identity gate: an empty string is not computed)."""
    string = QSIM.OpString()
    string.weight = 1.0
    QSIM.add_gate_to_opstring(QSIM.kI1, [0], string)
    return [string], 1


def _sentence(mp: MeasurementProcess) -> PauliSentence | None:
    """The Pauli sentence qsim can compute ``mp`` from, or ``None``."""
    if type(mp) not in (ExpectationMP, VarianceMP) or mp.obs is None or mp.mv is not None:
        return None
    sentence = mp.obs.pauli_rep
    if sentence is None or (isinstance(mp, VarianceMP) and len(sentence) > MAX_VARIANCE_TERMS):
        return None
    return sentence


@dataclass(frozen=True)
class MeasurementPlan:
    """How each analytic measurement of a tape is computed.

    Attributes
    ----------
    opsums : list[OpSum]
        Pauli sums qsim evaluates, for the measurements in ``in_qsim``, then the
        squared norm of the state: float32 gates are not exactly unitary and the norm
        drifts with circuit depth (by ~1.5e-8 per gate on two qubits), so values are
        divided by it.
    in_qsim : dict[int, int]
        Measurement index -> index of its first Pauli sum: ``O`` for an expectation
        value, ``O`` then ``O^2`` for a variance.
    """

    opsums: list[OpSum]
    in_qsim: dict[int, int]
    measurements: Sequence[MeasurementProcess]

    @classmethod
    def of(cls, tape: QuantumScript, num_qubits: int) -> MeasurementPlan:
        """The plan for the measurements of an analytic tape on wires ``0 .. n-1``."""
        opsums, in_qsim = [], {}
        for index, mp in enumerate(tape.measurements):
            sentence = _sentence(mp)
            if sentence is None:
                continue
            in_qsim[index] = len(opsums)
            opsums.append(pauli_opsum(sentence, num_qubits))
            if isinstance(mp, VarianceMP):
                opsums.append(pauli_opsum(sentence @ sentence, num_qubits))
        if opsums:
            opsums.append(_norm_opsum())
        return cls(opsums, in_qsim, tape.measurements)

    @property
    def needs_state(self) -> bool:
        """Whether some measurement is computed from the state in Python."""
        return len(self.in_qsim) < len(self.measurements)

    def results(self, expectations: np.ndarray, states: Sequence[np.ndarray] | None, batched: bool):
        """The tape's results, shaped as ``default.qubit`` returns them.

        Parameters
        ----------
        expectations : np.ndarray
            Shape ``(points, len(opsums))``: qsim's values per sweep point.
        states : sequence of np.ndarray or None
            Per sweep point, the normalised complex128 state with one axis per wire;
            needed when :attr:`needs_state`.
        batched : bool
            Whether the tape is broadcast (results get a leading batch axis).
        """
        values = []
        if self.opsums:
            expectations = expectations.real / expectations[:, -1:].real
        for index, mp in enumerate(self.measurements):
            if index in self.in_qsim:
                first = self.in_qsim[index]
                value = expectations[:, first]
                if isinstance(mp, VarianceMP):
                    value = expectations[:, first + 1] - value**2
                values.append(value if batched else value[0])
            else:
                per_point = [measure(mp, state) for state in states]
                values.append(np.stack(per_point) if batched else per_point[0])
        return values[0] if len(values) == 1 else tuple(values)
