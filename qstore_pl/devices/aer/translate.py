"""PennyLane circuits with noise channels as Qiskit circuits that Qiskit Aer runs.

Gates are written by the Qiskit converter of :mod:`qstore_pl.circuits.qiskit_format`;
every channel (``qml.DepolarizingChannel``, ``qml.AmplitudeDamping``, ``qml.QubitChannel``,
what ``qml.add_noise`` inserts) becomes an Aer ``QuantumError`` built from the channel's
own Kraus matrices, so Aer applies exactly the map default.mixed applies.

**Qubit order.** Wire ``k`` of the circuit (``k``-th of ``wire_order``) is Qiskit qubit
``n - 1 - k``. Qiskit numbers basis states little-endian (qubit 0 least significant),
PennyLane big-endian (the first wire most significant): with the qubits reversed, Aer's
density matrices, state vectors and measured bit strings are already in PennyLane's
order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import pennylane as qml
from pennylane.operation import Channel, Operator

from qstore_pl.circuits.extras import import_extra
from qstore_pl.circuits.qiskit_format import gate_writer
from qstore_pl.support.bounded_cache import BoundedCache

FEATURE = "the qstore.aer device"

#: Channels whose Aer errors are kept (one noise model reuses a handful of them).
ERROR_CACHE_SIZE = 256


class CircuitWriter:
    """Writes tapes (gates, channels, final measurements) as Qiskit circuits for Aer.

    Parameters
    ----------
    basis_gates : Iterable[str]
        Qiskit names of the gates the Aer method runs (its configuration's
        ``basis_gates``); other gates are decomposed by the device first.
    """

    def __init__(self, basis_gates: Iterable[str]):
        self._qiskit = import_extra("qiskit", "qiskit", FEATURE)
        self._noise = import_extra("qiskit_aer.noise", "qiskit", FEATURE)
        self._gates = gate_writer(FEATURE)
        self._basis = frozenset(basis_gates)
        self._runs: dict[str, bool] = {}  # PennyLane gate name -> in the basis
        self._errors: BoundedCache[Hashable, object] = BoundedCache(ERROR_CACHE_SIZE)

    def runs(self, op: Operator) -> bool:
        """Whether ``op`` is written as it is (a channel, a gate of Aer's basis, or a
        global phase, which no density matrix or sample sees); other operators are
        decomposed first."""
        if isinstance(op, (Channel, qml.GlobalPhase, qml.Barrier, qml.Identity)):
            return True
        if op.name not in self._runs:
            supported = self._gates.supported(op)
            self._runs[op.name] = supported and self._gates.gate(op).name in self._basis
        return self._runs[op.name]

    def circuit(self, operations: Sequence[Operator], wire_order: Sequence, save: str):
        """A Qiskit circuit of ``operations`` that ends by saving what ``save`` says.

        Parameters
        ----------
        operations : Sequence[Operator]
            Gates (with numeric parameters) and channels on wires of ``wire_order``.
        wire_order : Sequence
            The circuit's wires; wire ``k`` is Qiskit qubit ``n - 1 - k``.
        save : {"density_matrix", "measure"}
            Save the final density matrix, or measure every qubit (one bit string per
            shot, leftmost bit the first wire).
        """
        n = len(wire_order)
        qubit = {w: n - 1 - k for k, w in enumerate(wire_order)}
        qc = self._qiskit.QuantumCircuit(n)
        for op in operations:
            qubits = [qubit[w] for w in op.wires]
            if isinstance(op, (qml.GlobalPhase, qml.Barrier, qml.Identity)):
                continue
            if isinstance(op, Channel):
                # Kraus matrices are big-endian on op.wires: the last wire is the
                # least significant, so it comes first among Qiskit's qubits
                qc.append(self._error(op), qubits[::-1])
            elif self.runs(op):
                self._gates.append(qc, op, qubits)
            else:  # a diagonalising gate Qiskit has no name for
                self._gates.append(qc, qml.QubitUnitary(qml.matrix(op), wires=op.wires), qubits)
        if save == "density_matrix":
            qc.save_density_matrix()
        else:
            qc.measure_all()
        return qc

    def _error(self, op: Channel):
        key = (op.name, len(op.wires), tuple(np.asarray(p).tobytes() for p in op.data))
        return self._errors.get_or_build(key, lambda: self._build_error(op))

    def _build_error(self, op: Channel):
        kraus = [np.asarray(k, dtype=complex) for k in op.kraus_matrices()]
        return self._noise.QuantumError(self._qiskit.quantum_info.Kraus(kraus))


def bits_to_samples(memory: Sequence[str], num_wires: int) -> np.ndarray:
    """Aer's measured bit strings (leftmost bit: the first wire) as a ``(shots, wires)``
    array of 0s and 1s."""
    raw = np.frombuffer("".join(memory).encode("ascii"), dtype=np.uint8)
    return (raw - ord("0")).reshape(len(memory), num_wires).astype(np.int64)
