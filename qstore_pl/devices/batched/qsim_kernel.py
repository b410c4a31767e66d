"""Gate sequences on qsim's C++ kernels, one circuit state at a time (complex64).

For wide circuits qsim's vectorised, multi-threaded kernels and its gate fusion match
the compiled row kernel on forward passes; the price is a copy of each state in and
out of qsim per sequence, which the many short sequences of an adjoint backward sweep
feel most (measured: slower up to 18 qubits, even at 20). Rows that share every
matrix of a sequence share one qsim circuit. A sequence with a gate on more than six
wires, which qsim refuses, runs on the compiled row kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qstore_pl.devices.batched.kernel import StateKernel
from qstore_pl.devices.batched.program import ArrayGate
from qstore_pl.devices.qsim.simulator import QsimSimulator
from qstore_pl.devices.qsim.translate import QSIM

#: Widest matrix gate qsim applies (``add_matrix_gate`` refuses wider ones).
QSIM_MAX_GATE_WIRES = 6


def _local_matrix(gate: ArrayGate, row: int) -> np.ndarray:
    if gate.kind == "perm":
        assert gate.local is not None  # a permutation gate carries its local matrix
        return gate.local
    value = gate.value[row % gate.value.shape[0]] if gate.per_row else gate.value
    return np.diag(value) if gate.kind == "diag" else value


class QsimStateKernel(StateKernel):
    """Applies array gates to batches of complex64 states with qsim.

    Parameters
    ----------
    threads : int, optional
        qsim threads per state (default: decided per state by
        :func:`qstore_pl.support.threads.engine_threads`).
    max_fused_gate_size : int
        qsim's gate fusion limit.
    """

    name = "qsim"
    #: qsim needs every permutation as its own gate (it fuses them itself).
    compose_permutations = False
    planned = False

    def __init__(self, threads: int | None = None, max_fused_gate_size: int = 4):
        super().__init__(np.complex64)
        self._simulator = QsimSimulator(max_fused_gate_size, threads)

    def apply_all(self, states: np.ndarray, gates: Sequence[ArrayGate], n: int) -> np.ndarray:
        """Apply array gates in order to every row (overwrites ``states``)."""
        if not gates:
            return states
        if any(len(g.wires) > QSIM_MAX_GATE_WIRES for g in gates):
            return super().apply_all(states, gates, n)  # qsim refuses wider matrices
        distinct = max((g.value.shape[0] for g in gates if g.per_row), default=1)
        circuits = [self._circuit(gates, row, n) for row in range(distinct)]
        for r in range(states.shape[0]):
            states[r] = self._simulator.state(circuits[r % distinct], states[r].view(np.float32))
        return states

    @staticmethod
    def _circuit(gates: Sequence[ArrayGate], row: int, n: int):
        steps, last = [], [0] * n
        for order, gate in enumerate(gates):
            qubits = [n - 1 - w for w in gate.wires]
            time = max(last[q] for q in qubits)
            for q in qubits:
                last[q] = time + 1
            steps.append((time, order, qubits, _local_matrix(gate, row)))
        circuit = QSIM.Circuit()
        circuit.num_qubits = n
        for time, _, qubits, matrix in sorted(steps, key=lambda s: (s[0], s[1])):
            flat = np.empty(2 * matrix.size)
            flat[0::2], flat[1::2] = matrix.real.ravel(), matrix.imag.ravel()
            QSIM.add_matrix_gate(time, qubits, flat.tolist(), circuit)
        return circuit
