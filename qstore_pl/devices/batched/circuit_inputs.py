"""Circuit tensors through the batched engine with no tape: TFQ's PQC, structurally.

A circuit-input layer runs ``data circuit + model circuit`` for every sample. The
data circuits are constants (no gradients, as in TFQ), so the engine runs them
forward only, one program per data structure (every sample of a structure in one
call, angles read straight from the circuit tensor). Their final states are the
initial states of the model program, compiled once: its gate angles are an affine
function of the symbol values, ``angles = offset + jacobian @ values``, so binding a
call is one matrix product and the model's forward pass and adjoint sweep run once
for the whole batch, whatever mix of data structures it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP
from pennylane.tape import QuantumScript

from qstore_pl.circuits.tensor import MAX_WIRES, PAD_CODE, decode_circuits
from qstore_pl.devices.batched.adjoint import forward, vjp_sweep
from qstore_pl.devices.batched.kernel import StateKernel
from qstore_pl.devices.batched.measure import measure_all
from qstore_pl.devices.batched.memory import check_states_fit
from qstore_pl.devices.batched.program import BoundProgram, Program, TapeParameters
from qstore_pl.support.bounded_cache import BoundedCache
from qstore_pl.support.threads import numba_threads

if TYPE_CHECKING:
    from qstore_pl.devices.batched.device import BatchedDevice

#: Data structures whose programs are kept (TFQ's QCNN data has one per qubit).
_DATA_PROGRAMS = 256


@dataclass
class AffineModel:
    """A model circuit whose gate angles are affine in the flat symbol values.

    Attributes
    ----------
    tape : QuantumScript
        The model's gates (on wires ``0 .. n-1``, each with at most one parameter)
        and the measured expectation values.
    offset : np.ndarray
        ``(n_angles,)``: every angle of ``tape`` (in ``param_ops`` order) at zero.
    jacobian : np.ndarray
        ``(n_angles, n_values)``: how each angle moves with each symbol value.
    """

    tape: QuantumScript
    offset: np.ndarray
    jacobian: np.ndarray


@dataclass
class ForwardRun:
    """One forward pass, kept for the VJP that may follow it."""

    bound: BoundProgram
    states: np.ndarray
    outputs: np.ndarray
    per_sample: bool


class CircuitInputProgram:
    """Data circuits from a circuit tensor, then one compiled model program.

    Parameters
    ----------
    model : AffineModel
        The model circuit and its angle map.
    num_wires : int
        Wires of every circuit (data circuits may use fewer).
    engine : BatchedDevice
        The backend the router chose: its row kernel runs every pass, in its precision.
    """

    def __init__(self, model: AffineModel, num_wires: int, engine: BatchedDevice):
        self.num_wires = num_wires
        self.engine = engine
        self.model = model
        self.program = Program(model.tape)
        if self.program.num_wires != num_wires:
            raise ValueError(
                f"the model circuit spans {self.program.num_wires} wires, expected {num_wires}"
            )
        for mp in self.program.measurements:
            if not isinstance(mp, ExpectationMP):
                raise ValueError(f"{type(mp).__name__}: only expectation values are supported")
        self.num_outputs = len(self.program.measurements)
        jacobian = model.jacobian
        #: angles that move with the symbols, and the gates (positions) they drive
        self._moving = np.flatnonzero(np.any(jacobian != 0, axis=1))
        positions = [self.program.position[self.program.param_ops[j]] for j in self._moving]
        self._positions = positions
        self._trainable = frozenset(positions)
        self._data: BoundedCache[bytes, _DataProgram] = BoundedCache(_DATA_PROGRAMS)

    # ------------------------------------------------------------------ data part
    def data_states(self, tensor: np.ndarray, kernel: StateKernel) -> np.ndarray:
        """Final states of the data circuits, ``(B, 2**n)``, one engine call per structure."""
        tensor = np.asarray(tensor, dtype=np.float64)
        batch = tensor.shape[0]
        states = np.empty((batch, 2**self.num_wires), dtype=kernel.dtype)
        if batch == 0:
            return states
        layout = np.ascontiguousarray(tensor[:, :, : 1 + MAX_WIRES]).reshape(batch, -1)
        keys, inverse = np.unique(layout, axis=0, return_inverse=True)
        for k in range(keys.shape[0]):
            rows = np.flatnonzero(inverse.reshape(-1) == k)
            block = tensor[rows]
            key = keys[k].tobytes()
            data = self._data.get(key)
            if data is None:
                data = self._data[key] = _DataProgram(block[0], self.num_wires)
            states[rows] = data.run(kernel, block)
        return states

    # ---------------------------------------------------------------- model part
    def angles(self, values: np.ndarray) -> tuple[list[tuple], list[tuple[bool, ...]]]:
        """The model's parameter table for flat symbol values ``(n,)`` or ``(B, n)``."""
        model = self.model
        per_sample = values.ndim == 2
        table = model.offset[:, None] + model.jacobian @ (
            values.T if per_sample else values[:, None]
        )
        data: list[tuple] = []
        broadcast: list[tuple[bool, ...]] = []
        moving = set(self._moving.tolist())
        for j in range(table.shape[0]):
            if per_sample and j in moving:
                data.append((table[j],))
                broadcast.append((True,))
            else:
                data.append((float(table[j, 0]),))
                broadcast.append((False,))
        return data, broadcast

    def forward(self, tensor: np.ndarray, values: np.ndarray) -> ForwardRun:
        """Data states, then the model on them: outputs ``(B, n_outputs)``.

        ``values``: the flat symbol values, ``(n,)`` shared by the batch (PQC) or
        ``(B, n)`` per sample (ControlledPQC).
        """
        values = np.asarray(values, dtype=np.float64)
        n = self.num_wires
        batch = int(np.shape(tensor)[0])
        kernel = self.engine.row_kernel()
        check_states_fit(self.engine.name, n, batch, kernel.dtype)
        with numba_threads(batch << n):
            initial = self.data_states(tensor, kernel)
            data, broadcast = self.angles(values)
            table = TapeParameters(batch, data, broadcast)
            bound = BoundProgram.from_table(self.program, table, initial_state=initial)
            psi = forward(kernel, bound)
            measured = measure_all(kernel, psi, self.program.measurements, n)
        outputs = np.stack([np.reshape(v, (batch,)) for v in measured], axis=1)
        return ForwardRun(bound, psi, outputs.astype(np.float64), values.ndim == 2)

    def vjp(self, run: ForwardRun, cotangent: np.ndarray) -> np.ndarray:
        """Gradient of ``sum(cotangent * outputs)`` for the symbol values, one row per
        sample ``(B, n)`` (shared values: sum the rows): one adjoint sweep for the batch."""
        batch, n = run.bound.batch, self.num_wires
        cotangent = np.asarray(cotangent, dtype=np.float64).reshape(batch, self.num_outputs)
        dys = [cotangent[:, m] for m in range(self.num_outputs)]
        kernel = self.engine.row_kernel()
        with numba_threads(batch << n):
            measurements = self.program.measurements
            grads = vjp_sweep(kernel, run.bound, run.states, measurements, dys, self._trainable)
        jacobian = self.model.jacobian[self._moving]  # (moving, n_values)
        per_gate = (
            np.stack([grads[p] for p in self._positions])
            if self._positions
            else np.zeros((0, batch))
        )  # (moving, B)
        return (jacobian.T @ per_gate).T  # (B, n_values)


class _DataProgram:
    """One structure of data circuit: its program and where its angles sit in a block."""

    def __init__(self, block: np.ndarray, num_wires: int):
        (circuit,) = decode_circuits(block[None])
        wires = {int(w) for w in circuit.wires}
        if wires and max(wires) >= num_wires:
            raise ValueError(
                f"a data circuit acts on wire {max(wires)}, but the model circuit has "
                f"{num_wires} wires (0..{num_wires - 1})"
            )
        # the probabilities pin the program's width to every wire of the model
        tape = QuantumScript(circuit.operations, [qml.probs(wires=range(num_wires))])
        self.program = Program(tape)
        self.tape = tape
        rows = np.flatnonzero(block[:, 0] != PAD_CODE)  # tape operation i <- row rows[i]
        ops = tape.operations
        #: per parametrised operation: (row, number of parameters)
        self.reads = [(int(rows[i]), len(ops[i].data)) for i in self.program.param_ops]
        generic = any(t.num_params and not t.class_matrix for t in self.program.gates)
        self.needs_tapes = generic or bool(self.program.phase_gates)

    def run(self, kernel: StateKernel, block: np.ndarray) -> np.ndarray:
        """Final states of the circuits in ``block`` (all of this structure)."""
        if self.needs_tapes:  # gates whose matrices only their instances build
            bound = self.program.bind(decode_circuits(block))
        else:
            first = 1 + MAX_WIRES
            data = [
                tuple(block[:, row, first + k] for k in range(count)) for row, count in self.reads
            ]
            broadcast = [(True,) * count for _, count in self.reads]
            table = TapeParameters(block.shape[0], data, broadcast)
            bound = BoundProgram.from_table(self.program, table)
        return forward(kernel, bound)


def probe_rows(sizes: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Symbol values that reveal an affine angle map: zero, each unit vector, and two
    random points that check it (``(n + 3, n)``)."""
    n = int(sum(sizes))
    return np.concatenate([np.zeros((1, n)), np.eye(n), rng.uniform(-np.pi, np.pi, (2, n))])
