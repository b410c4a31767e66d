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
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.devices.batched.binding import AngleSource, ValueProgram
from qstore_pl.interfaces.broadcast_program import BroadcastProgram, copies_per_call
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
        self._door = getattr(device, "compiled", None)
        compiled = (
            compiled_circuit(skeleton, slots, device.wires, getattr(func, "__name__", "circuit"))
            if self._door is not None
            else None
        )
        self._circuit = compiled if isinstance(compiled, CompiledCircuit) else None
        self._refusal = compiled if isinstance(compiled, Refusal) else None
        #: the forward pass the next VJP may reuse, and the angles it ran
        self._kept: tuple[np.ndarray, CompiledForward] | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.last_path: str | None = None

    def values(self, angles: np.ndarray) -> np.ndarray:
        """``(K, B)`` angles to ``(B, n_outputs)`` values (no VJP follows)."""
        run = self._forward(angles, keep_vjp=False)
        if isinstance(run, Refusal):
            with _after(run):
                return self.tapes.values(angles)
        return run.values

    def forward(self, angles: np.ndarray) -> np.ndarray:
        """:meth:`values`, keeping the forward states for the :meth:`vjp` that follows."""
        run = self._forward(angles, keep_vjp=True)
        if isinstance(run, Refusal):
            with _after(run):
                return self.tapes.values(angles)
        with self._lock:
            self._kept = (np.array(angles, dtype=np.float64), run)
        return run.values

    def vjp(self, angles: np.ndarray, cotangents: np.ndarray) -> np.ndarray:
        """Gradients ``(T, K, B)`` of ``T`` stacked cotangents ``(T, B, n_outputs)``.

        Reuses the forward pass :meth:`forward` kept for the same angles (a training
        step's), else runs one; one adjoint sweep carries all ``T``.
        """
        angles = np.asarray(angles, dtype=np.float64)
        cotangents = np.asarray(cotangents, dtype=np.float64)
        with self._lock:
            kept, self._kept = self._kept, None  # the states are large: used once
        if kept is not None and kept[0].shape == angles.shape and np.array_equal(kept[0], angles):
            run: CompiledForward | Refusal = kept[1]
        else:
            run = self._forward(angles, keep_vjp=True)
        if not isinstance(run, Refusal):
            grads = self._stacked_vjp(run, angles, cotangents)
            if not isinstance(grads, EngineFailure):
                return grads
            run = self._refused(grads)
        with _after(run):
            return self.tapes.vjp(angles, cotangents)

    def _stacked_vjp(
        self, run: CompiledForward, angles: np.ndarray, cotangents: np.ndarray
    ) -> np.ndarray | EngineFailure:
        """The door's VJPs of ``run`` for the stacked cotangents, as many per sweep as
        :func:`~qstore_pl.interfaces.broadcast_program.copies_per_call` allows (with
        shots all at once: the shifted circuits, sampled once, serve every cotangent)."""
        assert self._door is not None  # a forward pass ran through it
        copies, batch = cotangents.shape[0], angles.shape[1]
        per_sweep = (
            copies if run.circuit.shots else copies_per_call(batch, run.circuit.program.num_wires)
        )
        arrays = (run_table(angles),)
        out = np.empty((copies, self.n_params, batch))
        for first in range(0, copies, per_sweep):
            part = cotangents[first : first + per_sweep]
            flat = part.reshape(len(part) * batch, self.n_outputs)
            grads = self._door.vjp(run, flat, arrays, [0])
            if isinstance(grads, EngineFailure):
                return grads
            per_sample = grads[0].reshape(len(part), batch, self.n_params)
            out[first : first + len(part)] = np.transpose(per_sample, (0, 2, 1))
        return out

    def jacobian(self, angles: np.ndarray) -> np.ndarray:
        """Per-sample Jacobians ``(B, n_outputs, K)``: a VJP per output, in one sweep."""
        batch = np.shape(angles)[1]
        units = np.zeros((self.n_outputs, batch, self.n_outputs))
        for o in range(self.n_outputs):
            units[o, :, o] = 1.0
        return np.transpose(self.vjp(angles, units), (2, 0, 1))

    def _forward(self, angles: np.ndarray, keep_vjp: bool) -> CompiledForward | Refusal:
        if self._circuit is None or self._door is None:
            return self._refused(self._refusal or Refusal("the device has no compiled path"))
        run = self._door.forward(self._circuit, (run_table(angles),), keep_vjp)
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


def run_table(angles: np.ndarray) -> np.ndarray:
    """The ``(K, B)`` angles as the value program's per-sample argument, ``(B, K)``."""
    return np.ascontiguousarray(np.asarray(angles, dtype=np.float64).T)


def compiled_circuit(
    skeleton: QuantumScript, slots: Sequence[int], wires, label: str
) -> CompiledCircuit | Refusal:
    """``skeleton`` as a value program whose per-sample argument is the angle table
    (row ``k`` of the table is parameter ``slots[k]``), or why it cannot be one."""
    if wires is None:
        return Refusal("the device has no fixed wires")
    for op in skeleton.operations:
        if not _engine_gate(op):
            return Refusal(f"{op.name} does not run on the batched engine")
    for mp in skeleton.measurements:
        reason = _measurement_refusal(mp)
        if reason:
            return Refusal(reason)
    row_of = {slot: row for row, slot in enumerate(slots)}
    values = skeleton.get_parameters(trainable_only=False)
    params = [0.0 if j in row_of else float(np.real(v)) for j, v in enumerate(values)]
    sources = [AngleSource(0, row_of[j], 1.0) if j in row_of else None for j in range(len(params))]
    concrete = _on_indices(skeleton.bind_new_parameters(params, list(range(len(params)))), wires)
    full = QuantumScript(  # the identity fixes the width, as in a layer's recording
        [qml.Identity(wires=range(len(wires))), *concrete.operations],
        concrete.measurements,
        shots=skeleton.shots,
    )
    try:
        program = ValueProgram(full, sources, [True])
    except (ValueError, NotImplementedError) as err:
        return Refusal(str(err))
    if skeleton.shots and (reason := program.shift_refusal()):
        return Refusal(reason)
    return CompiledCircuit(label, program, tuple(slots))


__all__ = ["AngleTable", "compiled_circuit", "run_table"]
