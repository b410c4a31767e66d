"""A circuit whose gate angles come as a ``(K, B)`` table, on the router's compiled path.

JAX records a circuit per trace and computes every gate angle itself (classical
processing stays JAX's to differentiate), so the host receives the angles as a table:
one row per computed angle, one column per sample. Here that table binds straight
into the batched engine's compiled plans through the router's
:class:`~qstore_pl.router.execution.compiled.CompiledDoor` (routing, budgets, logging,
tracker and callbacks as for any routed run): row ``k`` is the per-sample argument
element ``k``, so no tape is built per call and a VJP is one adjoint sweep over the
forward states the door kept.

Where the compiled path cannot run the circuit (the router picks a backend that runs
tapes only, a gate the engine lacks, an engine failure) the table runs on the tape
path, :class:`~qstore_pl.interfaces.broadcast_program.BroadcastProgram`, with the same
values and gradients; the first time for each reason a :class:`CompiledPathWarning`
says why, and ``dev.explain(qnode)`` names the path the last call took.

With shots a VJP shifts every row it differentiates, so :meth:`AngleTable.rows` gives
a view that differentiates only the rows a derivative needs (JAX knows which rows'
tangents are zero: those computed from arguments it does not differentiate). On the
compiled path the other rows become a second per-sample argument of the value
program, which the VJP does not ask for.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.devices.batched.binding import AngleSource, ValueProgram
from qstore_pl.interfaces.broadcast_program import (
    BroadcastProgram,
    copies_per_call,
    needed_rows,
)
from qstore_pl.layers.compiled import (
    CompiledPathWarning,
    _after,
    _engine_gate,
    _measurement_refusal,
    _on_indices,
)
from qstore_pl.router.execution.compiled import (
    CompiledCircuit,
    CompiledForward,
    EngineFailure,
    Refusal,
)


class AngleTable:
    """Values and VJPs of one circuit structure, its gate angles a ``(K, B)`` table.

    Parameters
    ----------
    skeleton : QuantumScript
        The circuit decomposed to gates with at most one angle; with shots, values are
        sampled and VJPs follow the parameter-shift rule, on either path.
    slots : Sequence[int]
        The ``K`` parameters of ``skeleton`` (indices among all of them) the table
        gives; the others are constants.
    device : Device
        Where the circuit runs: ``qstore.router`` (or another device with VJPs, which
        takes the tape path).
    func : Callable
        The circuit function, as ``dev.explain`` knows it.
    """

    def __init__(
        self,
        skeleton: QuantumScript,
        slots: Sequence[int],
        device: qml.devices.Device,
        func: Callable,
    ):
        self.tapes = BroadcastProgram(skeleton, device, slots)
        self.n_params, self.n_outputs = self.tapes.n_params, self.tapes.n_outputs
        self._func = func
        self._skeleton, self._slots, self._wires = skeleton, list(slots), device.wires
        self._door = getattr(device, "compiled", None)
        #: the compiled circuit (or why there is none) per set of differentiated rows
        self._circuits: dict[Rows, CompiledCircuit | Refusal] = {}
        self._views: dict[Rows, TableRows] = {}
        #: the forward pass the next VJP may reuse, the angles it ran and its rows
        self._kept: tuple[np.ndarray, Rows, CompiledForward] | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.last_path: str | None = None
        self._circuit_for(None)  # the static refusals: before the first call

    def rows(self, needed: Sequence[bool]) -> TableRows:
        """The forward pass and VJP of derivatives of the rows ``needed`` alone (one
        flag per row), as a view of this table; the same view for the same rows.
        Without shots every row is differentiated (an adjoint sweep costs the same)."""
        flags = tuple(bool(n) for n in needed)
        key: Rows = flags if self.tapes.shots and not all(flags) else None
        with self._lock:
            if key not in self._views:
                self._views[key] = TableRows(self, key)
            return self._views[key]

    def values(self, angles: np.ndarray) -> np.ndarray:
        """``(K, B)`` angles to ``(B, n_outputs)`` values (no VJP follows)."""
        run = self._forward(angles, None, keep_vjp=False)
        if isinstance(run, Refusal):
            with _after(run):
                return self.tapes.values(angles)
        return run.values

    def forward(self, angles: np.ndarray, needed: Rows = None) -> np.ndarray:
        """:meth:`values`, keeping the forward states for the :meth:`vjp` that follows
        (for the rows ``needed``, ``None``: all)."""
        run = self._forward(angles, needed, keep_vjp=True)
        if isinstance(run, Refusal):
            with _after(run):
                return self.tapes.values(angles)
        with self._lock:
            self._kept = (np.array(angles, dtype=np.float64), needed, run)
        return run.values

    def vjp(self, angles: np.ndarray, cotangents: np.ndarray, needed: Rows = None) -> np.ndarray:
        """Gradients ``(T, K, B)`` of ``T`` stacked cotangents ``(T, B, n_outputs)``
        (rows not ``needed`` get zeros with shots).

        Reuses the forward pass :meth:`forward` kept for the same angles and rows (a
        training step's), else runs one; one adjoint sweep carries all ``T``.
        """
        angles = np.asarray(angles, dtype=np.float64)
        cotangents = np.asarray(cotangents, dtype=np.float64)
        with self._lock:
            kept, self._kept = self._kept, None  # the states are large: used once
        if kept is not None and kept[1] == needed and _same(kept[0], angles):
            run: CompiledForward | Refusal = kept[2]
        else:
            run = self._forward(angles, needed, keep_vjp=True)
        if not isinstance(run, Refusal):
            grads = self._stacked_vjp(run, angles, cotangents, needed)
            if not isinstance(grads, EngineFailure):
                return grads
            run = self._refused(grads)
        with _after(run):
            return self.tapes.vjp(angles, cotangents, needed)

    def _stacked_vjp(
        self, run: CompiledForward, angles: np.ndarray, cotangents: np.ndarray, needed: Rows
    ) -> np.ndarray | EngineFailure:
        """The door's VJPs of ``run`` for the stacked cotangents, as many per sweep as
        :func:`~qstore_pl.interfaces.broadcast_program.copies_per_call` allows (with
        shots all at once: the shifted circuits, sampled once, serve every cotangent)."""
        assert self._door is not None  # a forward pass ran through it
        copies, batch = cotangents.shape[0], angles.shape[1]
        per_sweep = (
            copies if run.circuit.shots else copies_per_call(batch, run.circuit.program.num_wires)
        )
        arrays = run_tables(angles, needed)
        rows = needed_rows(needed, self.n_params)
        out = np.zeros((copies, self.n_params, batch))
        for first in range(0, copies, per_sweep):
            part = cotangents[first : first + per_sweep]
            flat = part.reshape(len(part) * batch, self.n_outputs)
            grads = self._door.vjp(run, flat, arrays, [0])
            if isinstance(grads, EngineFailure):
                return grads
            per_sample = grads[0].reshape(len(part), batch, len(rows))
            out[first : first + len(part), rows] = np.transpose(per_sample, (0, 2, 1))
        return out

    def jacobian(self, angles: np.ndarray, needed: Rows = None) -> np.ndarray:
        """Per-sample Jacobians ``(B, n_outputs, K)``: a VJP per output, in one sweep."""
        batch = np.shape(angles)[1]
        units = np.zeros((self.n_outputs, batch, self.n_outputs))
        for o in range(self.n_outputs):
            units[o, :, o] = 1.0
        return np.transpose(self.vjp(angles, units, needed), (2, 0, 1))

    def _circuit_for(self, needed: Rows) -> CompiledCircuit | Refusal:
        if needed not in self._circuits:
            if self._door is None:
                self._circuits[needed] = Refusal("the device has no compiled path")
            else:
                label = getattr(self._func, "__name__", "circuit")
                self._circuits[needed] = compiled_circuit(
                    self._skeleton, self._slots, self._wires, label, needed
                )
        return self._circuits[needed]

    def _forward(
        self, angles: np.ndarray, needed: Rows, keep_vjp: bool
    ) -> CompiledForward | Refusal:
        circuit = self._circuit_for(needed)
        if isinstance(circuit, Refusal):
            return self._refused(circuit)
        assert self._door is not None  # else the circuit is a refusal
        run = self._door.forward(circuit, run_tables(angles, needed), keep_vjp)
        if isinstance(run, Refusal):
            return self._refused(run)
        self._note(run.path)
        return run

    def _refused(self, refusal: Refusal) -> Refusal:
        self._note(f"tapes ({refusal.reason})")
        if self._door is not None and refusal.kind not in self._warned:
            self._warned.add(refusal.kind)
            warnings.warn(
                f"{getattr(self._func, '__name__', 'circuit')}: this circuit runs on the "
                f"tape path, not the compiled path: {refusal.reason}. Values and "
                "gradients are the same, only slower.",
                CompiledPathWarning,
                stacklevel=2,
            )
        return refusal

    def _note(self, path: str) -> None:
        if self.last_path != path:
            self.last_path = path
            if self._door is not None:
                self._door.note_path(self._func, path)


#: Which rows of a table a VJP differentiates, one flag per row; ``None``: all.
Rows = tuple[bool, ...] | None


class TableRows:
    """An :class:`AngleTable` whose VJPs differentiate the rows ``needed`` alone: what
    the JAX primitives call (``n_outputs``, ``forward``, ``vjp``, ``jacobian``)."""

    def __init__(self, table: AngleTable, needed: Rows):
        self.table, self.needed = table, needed
        self.n_outputs = table.n_outputs

    def forward(self, angles: np.ndarray) -> np.ndarray:
        """:meth:`AngleTable.forward` for these rows."""
        return self.table.forward(angles, self.needed)

    def vjp(self, angles: np.ndarray, cotangents: np.ndarray) -> np.ndarray:
        """:meth:`AngleTable.vjp` for these rows."""
        return self.table.vjp(angles, cotangents, self.needed)

    def jacobian(self, angles: np.ndarray) -> np.ndarray:
        """:meth:`AngleTable.jacobian` for these rows."""
        return self.table.jacobian(angles, self.needed)


def _same(kept: np.ndarray, angles: np.ndarray) -> bool:
    return kept.shape == angles.shape and np.array_equal(kept, angles)


def run_tables(angles: np.ndarray, needed: Rows = None) -> tuple[np.ndarray, ...]:
    """The ``(K, B)`` angles as the value program's per-sample arguments, ``(B, K)``:
    the whole table, or the rows ``needed`` and then the others."""
    table = np.asarray(angles, dtype=np.float64)
    if needed is None:
        return (np.ascontiguousarray(table.T),)
    mask = np.asarray(needed, dtype=bool)
    return np.ascontiguousarray(table[mask].T), np.ascontiguousarray(table[~mask].T)


def compiled_circuit(
    skeleton: QuantumScript, slots: Sequence[int], wires, label: str, needed: Rows = None
) -> CompiledCircuit | Refusal:
    """``skeleton`` as a value program whose per-sample argument is the angle table
    (row ``k`` of the table is parameter ``slots[k]``), or why it cannot be one. With
    ``needed``, the rows it flags are argument 0 and the others argument 1, in order
    (:func:`run_tables`), so that a VJP of argument 0 differentiates those alone."""
    if wires is None:
        return Refusal("the device has no fixed wires")
    for op in skeleton.operations:
        if not _engine_gate(op):
            return Refusal(f"{op.name} does not run on the batched engine")
    for mp in skeleton.measurements:
        reason = _measurement_refusal(mp)
        if reason:
            return Refusal(reason)
    flags = [True] * len(slots) if needed is None else list(needed)
    source_of, counts = {}, [0, 0]
    for slot, flag in zip(slots, flags, strict=True):
        arg = 0 if flag else 1
        source_of[slot] = AngleSource(arg, counts[arg], 1.0)
        counts[arg] += 1
    values = skeleton.get_parameters(trainable_only=False)
    params = [0.0 if j in source_of else float(np.real(v)) for j, v in enumerate(values)]
    sources = [source_of.get(j) for j in range(len(params))]
    concrete = _on_indices(skeleton.bind_new_parameters(params, list(range(len(params)))), wires)
    full = QuantumScript(  # the identity fixes the width, as in a layer's recording
        [qml.Identity(wires=range(len(wires))), *concrete.operations],
        concrete.measurements,
        shots=skeleton.shots,
    )
    try:
        program = ValueProgram(full, sources, [True] if needed is None else [True, True])
    except (ValueError, NotImplementedError) as err:
        return Refusal(str(err))
    if skeleton.shots and (reason := program.shift_refusal()):
        return Refusal(reason)
    trainable = tuple(slot for slot, flag in zip(slots, flags) if flag)
    return CompiledCircuit(label, program, trainable)


__all__ = ["AngleTable", "Rows", "TableRows", "compiled_circuit", "run_tables"]
