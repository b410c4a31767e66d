"""Analytic measurements of qsim results.

Three ways to compute a measurement, cheapest first:

- Linear combinations of single-qubit ``Z`` (``<Z_i>`` on every qubit is the usual
  readout of a quantum ML model): every ``<Z_i>`` from the final state's
  probabilities in two passes over them, however many qubits are measured.
- Other expectation values and variances of observables with a Pauli
  representation (Pauli words, Pauli sums, Hamiltonians of them): qsim's C++
  expectation routine, one pass over the state per Pauli sum. A tape that measures
  only those never brings the state into Python.
- Everything else (probabilities, the state, density matrices, Hermitian and
  projector observables, ...): PennyLane's own measurement functions on the final
  state, renormalised in double precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pennylane.devices.qubit.measure import measure
from pennylane.measurements import ExpectationMP, MeasurementProcess, VarianceMP
from pennylane.pauli import PauliSentence
from pennylane.tape import QuantumScript
from pennylane.typing import Result

from qstore_pl.devices.qsim.simulator import OpSum, QsimSimulator
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


def z_expectations(state: np.ndarray, num_wires: int) -> np.ndarray:
    """``<Z_i>`` for every wire ``i`` of a (not necessarily normalised) state.

    The probabilities, as a matrix whose rows are indexed by the first half of the
    wires and columns by the second, reduce to row and column sums in two passes;
    each wire's marginal then comes from those short vectors.
    """
    probs = state.real**2
    probs += state.imag**2
    high = num_wires // 2
    probs = probs.reshape(2**high, -1)
    # float32 squares, float64 sums: a float32 sum of 2^20 terms loses ~1e-5
    rows, cols = probs.sum(axis=1, dtype=float), probs.sum(axis=0, dtype=float)
    ones = [rows.reshape(2**k, 2, -1)[:, 1].sum() for k in range(high)]
    ones += [cols.reshape(2**k, 2, -1)[:, 1].sum() for k in range(num_wires - high)]
    return 1 - 2 * np.array(ones) / rows.sum()


def _z_linear(sentence: PauliSentence) -> tuple[float, dict[int, float]] | None:
    """``(c, {wire: c_i})`` if the sentence is ``c + sum_i c_i Z_i``, else ``None``."""
    constant, coeffs = 0.0, dict[int, float]()
    for word, coeff in sentence.items():
        if np.iscomplexobj(coeff) and np.imag(coeff) != 0:
            return None
        if not word:
            constant += float(np.real(coeff))
        elif len(word) == 1 and next(iter(word.values())) == "Z":
            wire = next(iter(word))
            coeffs[wire] = coeffs.get(wire, 0.0) + float(np.real(coeff))
        else:
            return None
    return constant, coeffs


@dataclass
class _Point:
    """What one sweep point's measurements are computed from."""

    expectations: np.ndarray  # qsim Pauli sums, divided by the state's norm
    z: np.ndarray | None = None  # <Z_i> for every wire
    state: np.ndarray | None = None  # normalised complex128, one axis per wire


@dataclass(frozen=True)
class MeasurementPlan:
    """How each analytic measurement of a tape is computed.

    Attributes
    ----------
    measurements : tuple[MeasurementProcess, ...]
        The tape's measurements, on wires ``0 .. n-1``.
    num_wires : int
        Width of the simulated state.
    z_linear : dict[int, tuple[float, dict[int, float]]]
        Measurement index -> ``(c, {wire: c_i})`` for ``<c + sum_i c_i Z_i>``.
    opsums : list[OpSum]
        Pauli sums for the measurements in ``in_qsim``, then the squared norm of the
        state: float32 gates are not exactly unitary and the norm drifts with circuit
        depth (by ~1.5e-8 per gate on two qubits), so values are divided by it.
    in_qsim : dict[int, int]
        Measurement index -> index of its first Pauli sum: ``O`` for an expectation
        value, ``O`` then ``O^2`` for a variance.
    """

    measurements: tuple[MeasurementProcess, ...]
    num_wires: int
    z_linear: dict[int, tuple[float, dict[int, float]]]
    opsums: list[OpSum]
    in_qsim: dict[int, int]

    @classmethod
    def of(cls, tape: QuantumScript, num_wires: int) -> MeasurementPlan:
        """The plan for the measurements of an analytic tape on wires ``0 .. n-1``."""
        z_linear: dict[int, tuple[float, dict[int, float]]] = {}
        opsums: list[OpSum] = []
        in_qsim: dict[int, int] = {}
        for index, mp in enumerate(tape.measurements):
            sentence = _sentence(mp)
            if sentence is None:
                continue
            linear = _z_linear(sentence) if isinstance(mp, ExpectationMP) else None
            if linear is not None:
                z_linear[index] = linear
                continue
            in_qsim[index] = len(opsums)
            opsums.append(pauli_opsum(sentence, num_wires))
            if isinstance(mp, VarianceMP):
                opsums.append(pauli_opsum(sentence @ sentence, num_wires))
        if opsums:
            opsums.append(_norm_opsum())
        return cls(tuple(tape.measurements), num_wires, z_linear, opsums, in_qsim)

    @property
    def _on_state(self) -> bool:
        """Whether PennyLane measures something on the state."""
        return len(self.in_qsim) + len(self.z_linear) < len(self.measurements)

    def evaluate(self, simulator: QsimSimulator, circuit: Any, initial: Any) -> _Point:
        """Simulate one sweep point and compute what its measurements need."""
        if not (self.z_linear or self._on_state):  # qsim does it all; no state copy
            values = simulator.expectation_values(circuit, self.opsums, initial)
            return _Point(_normalise(values))
        state = simulator.state(circuit, initial)
        values = simulator.state_expectation_values(state, self.opsums)
        point = _Point(_normalise(values))
        if self.z_linear:
            point.z = z_expectations(state, self.num_wires)
        if self._on_state:
            point.state = normalised(state, self.num_wires)
        return point

    def results(self, points: list[_Point], batched: bool) -> Result:
        """The tape's results, shaped as ``default.qubit`` returns them.

        Parameters
        ----------
        points : list[_Point]
            :meth:`evaluate` of each sweep point.
        batched : bool
            Whether the tape is broadcast (results get a leading batch axis).
        """
        values = []
        for index, mp in enumerate(self.measurements):
            per_point = [self._value(index, mp, point) for point in points]
            values.append(np.stack(per_point) if batched else per_point[0])
        return values[0] if len(values) == 1 else tuple(values)

    def _value(self, index: int, mp: MeasurementProcess, point: _Point) -> Any:
        if index in self.z_linear:
            constant, coeffs = self.z_linear[index]
            assert point.z is not None  # evaluate() reads <Z_i> whenever z_linear is set
            return np.float64(constant + sum(c * point.z[w] for w, c in coeffs.items()))
        if index in self.in_qsim:
            first = self.in_qsim[index]
            value = point.expectations[first]
            if isinstance(mp, VarianceMP):
                value = point.expectations[first + 1] - value**2
            return np.float64(value)
        return measure(mp, point.state)


def _sentence(mp: MeasurementProcess) -> PauliSentence | None:
    """The Pauli sentence qsim can compute ``mp`` from, or ``None``."""
    if type(mp) not in (ExpectationMP, VarianceMP) or mp.obs is None or mp.mv is not None:
        return None
    sentence = mp.obs.pauli_rep
    if sentence is None or (isinstance(mp, VarianceMP) and len(sentence) > MAX_VARIANCE_TERMS):
        return None
    return sentence


def _normalise(values: np.ndarray) -> np.ndarray:
    """Real parts of qsim's values divided by the last one, the squared norm."""
    return values.real[:-1] / values.real[-1] if len(values) else values.real


def normalised(state: np.ndarray, num_wires: int) -> np.ndarray:
    """A qsim state in double precision, renormalised, one axis per wire.

    Single-precision rounding leaves the norm off by up to ~1e-5 after thousands of
    gates; PennyLane's sampling rejects probabilities whose sum is off by 1e-6.
    """
    state = state[: 2**num_wires].astype(np.complex128)  # shorter if simulated wider
    state /= np.linalg.norm(state)
    return state.reshape((2,) * num_wires)
