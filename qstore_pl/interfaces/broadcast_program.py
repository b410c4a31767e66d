"""A circuit structure whose every gate angle is broadcast, run for values and VJPs.

A framework that records a circuit once per structure (JAX at trace time) hands the
host a table of gate angles, ``(n_params, batch)``: one row per gate angle it
computed, one column per sample, weights repeated along the batch. Because every
angle is broadcast, samples do not mix: one vector-Jacobian product gives every
sample's own gradient, ``cotangent[b] . d out[b] / d angle[:, b]``, and ``T``
cotangents (a Jacobian's unit vectors ``e_o``) stacked along the batch axis give
``T`` of them in one device call. The framework then applies the chain rule through
its own recording of how the angles came from its inputs and weights.

This is the tape path: each call binds the angles into a tape. On ``qstore.router``
the table takes the router's compiled path instead where it can
(:mod:`qstore_pl.layers.angle_table`), and this one where the router picks a
backend that runs tapes only.

With shots (the skeleton's), values are the device's samples and the VJPs follow
PennyLane's parameter-shift rule: each row of the table is shifted by its gate's own
rule in every column at once, a few shifted copies of the batch per device call
(:mod:`qstore_pl.support.parameter_shift`), each sampled with the same shots. Any
device that runs broadcast tapes with shots will do then; PennyLane's own transform
refuses to shift broadcast parameters.

Everything reaches the device through its public API (``setup_execution_config``,
``preprocess_transforms``, ``execute`` / ``execute_and_compute_vjp``), so on
``qstore.router`` routing, callbacks, the tracker and budgets apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pennylane as qml
from pennylane.devices import ExecutionConfig
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.tape import QuantumScript

from qstore_pl.support.parameter_shift import (
    contract_shifts,
    shift_chunks,
    shift_rule,
    shift_terms,
    shifted_copies,
)

#: Simulated amplitudes per device call above which the Jacobian is split into calls.
MAX_JACOBIAN_AMPLITUDES = 2**25  # 512 MiB of complex128 states


def copies_per_call(batch: int, num_wires: int) -> int:
    """Stacked copies of a batch (one per cotangent) that one device call simulates
    within :data:`MAX_JACOBIAN_AMPLITUDES`; at least one."""
    return max(1, MAX_JACOBIAN_AMPLITUDES // (batch << num_wires))


def needed_rows(needed: Sequence[bool] | None, count: int) -> list[int]:
    """The indices of the rows ``needed`` flags among ``count`` (``None``: all)."""
    return list(range(count)) if needed is None else [k for k, n in enumerate(needed) if n]


def is_gate_with_angle(op: qml.operation.Operator) -> bool:
    """Whether ``op`` ends a decomposition: no parameters, or one with a generator."""
    if op.num_params == 0:
        return op.has_matrix
    return op.num_params == 1 and op.has_generator


def output_widths(measurements, n_wires: int) -> tuple[int, ...]:
    """Columns each measurement contributes to a ``(batch, n_outputs)`` result."""
    widths = []
    for mp in measurements:
        if isinstance(mp, ExpectationMP):
            widths.append(1)
        elif isinstance(mp, ProbabilityMP):
            widths.append(2 ** len(mp.wires or range(n_wires)))
        else:
            raise TypeError(
                f"{type(mp).__name__} is not supported on this path: measure qml.expval or "
                "qml.probs, or use a QNode with interface='jax' for other measurements"
            )
    return tuple(widths)


class BroadcastProgram:
    """One circuit structure on one device; gate angles come as a ``(K, B)`` table.

    Parameters
    ----------
    skeleton : QuantumScript
        The circuit decomposed to gates that pass :func:`is_gate_with_angle`; its shots
        are the device's.
    device : Device
        A device that computes vector-Jacobian products (``qstore.router``); with
        shots, any device that runs broadcast tapes.
    slots : Sequence[int], optional
        The ``K`` parameters of ``skeleton`` (indices among all of them) the table
        replaces on every call; the others keep their values. Default: all of them.
    """

    def __init__(
        self,
        skeleton: QuantumScript,
        device: qml.devices.Device,
        slots: Sequence[int] | None = None,
    ):
        self.skeleton = skeleton
        self.device = device
        every = range(len(skeleton.get_parameters(trainable_only=False)))
        self.slots = list(every if slots is None else slots)
        self.n_params = len(self.slots)
        self.widths = output_widths(skeleton.measurements, len(device.wires or skeleton.wires))
        self.n_outputs = sum(self.widths)
        self.shots = skeleton.shots
        #: with shots, each row's parameter-shift rule (its gate's)
        self._rules = self._shift_rules() if self.shots else None
        # set up and checked here, when the framework records the circuit, so that a
        # device or circuit this path cannot run fails at once, not inside a callback
        self._config, self._pipeline = self._prepare()
        self._pipelined(self._bind(np.zeros((self.n_params, 1))))

    def _bind(self, angles: np.ndarray) -> QuantumScript:
        tape = self.skeleton.bind_new_parameters(list(angles), self.slots)
        tape.trainable_params = self.slots
        return tape

    def _shift_rules(self) -> list[np.ndarray]:
        if self.shots.has_partitioned_shots:
            raise TypeError(
                f"a shot vector ({self.shots}) on the angle-table path, which samples one "
                "number of shots; use a QNode with interface='jax' for shot vectors"
            )
        owners = [op for op in self.skeleton.operations for _ in op.data]
        try:
            return [shift_rule(owners[slot]) for slot in self.slots]
        except ValueError as err:
            raise TypeError(f"{err}: use a QNode with interface='jax' for this circuit") from err

    def _prepare(self) -> tuple:
        """Execution config and compile pipeline for this circuit on this device."""
        if self.shots:  # values only: the derivatives are this class's shifts
            config = self.device.setup_execution_config(ExecutionConfig(), self.skeleton)
            return config, self.device.preprocess_transforms(config)
        config = self.device.setup_execution_config(
            ExecutionConfig(gradient_method="best", use_device_jacobian_product=True),
            self.skeleton,
        )
        device_derivatives = config.gradient_method in ("adjoint", "device")
        if not (device_derivatives and config.use_device_jacobian_product):
            raise TypeError(
                f"device {self.device.name!r} does not compute vector-Jacobian products "
                f"(its 'best' derivatives are {config.gradient_method!r}); use "
                "qml.device('qstore.router', ...) or a device with adjoint derivatives"
            )
        return config, self.device.preprocess_transforms(config)

    def _pipelined(self, tape: QuantumScript) -> tuple:
        """The device's preprocessing; it must keep one tape and its gate angles, unless
        the device only samples values (shots)."""
        tapes, postprocess = self._pipeline((tape,))
        if self.shots:
            return tapes, postprocess
        if len(tapes) != 1 or len(tapes[0].get_parameters()) != self.n_params:
            raise TypeError(
                f"{self.device.name} rewrote this circuit into {len(tapes)} circuit(s) with "
                "other parameters, so its derivatives cannot be mapped back to the gates; "
                "use a QNode with interface='jax' for this circuit"
            )
        return tapes, postprocess

    def _run(self, tape: QuantumScript, cotangent: np.ndarray | None):
        tapes, postprocess = self._pipelined(tape)
        if cotangent is None:
            return postprocess(self.device.execute(tapes, self._config))[0], None
        per_measurement = self._split_outputs(cotangent)
        results, vjps = self.device.execute_and_compute_vjp(tapes, (per_measurement,), self._config)
        return postprocess(results)[0], vjps[0]

    def _split_outputs(self, rows: np.ndarray):
        """``(batch, n_outputs)`` into the device's per-measurement result layout."""
        parts, start = [], 0
        for mp, width in zip(self.skeleton.measurements, self.widths, strict=True):
            part = rows[:, start : start + width]
            parts.append(part[:, 0] if isinstance(mp, ExpectationMP) else part)
            start += width
        return parts[0] if len(parts) == 1 else tuple(parts)

    def _join_outputs(self, result, batch: int) -> np.ndarray:
        parts = (result,) if len(self.widths) == 1 else result
        return np.concatenate([np.reshape(p, (batch, -1)) for p in parts], axis=1)

    def values(self, angles: np.ndarray) -> np.ndarray:
        """``(K, B)`` angles to ``(B, n_outputs)`` values."""
        angles = self._checked(angles)
        result, _ = self._run(self._bind(angles), None)
        return self._join_outputs(result, angles.shape[1])

    def vjp(
        self, angles: np.ndarray, cotangents: np.ndarray, needed: Sequence[bool] | None = None
    ) -> np.ndarray:
        """The gradients ``(T, K, B)`` of ``T`` cotangents ``(T, B, O)`` at ``(K, B)``
        angles (each sample's own: samples do not mix). With shots, only the rows
        ``needed`` (one flag per row; ``None``: all) are shifted; the others get zeros."""
        angles = self._checked(angles)
        if self.shots:
            cotangents = np.asarray(cotangents, dtype=np.float64)
            return self._shift_vjp(angles, cotangents, needed)
        batch, copies = angles.shape[1], len(cotangents)
        per_call = copies_per_call(batch, len(self.skeleton.wires))
        grads = np.empty((copies, self.n_params, batch))
        for first in range(0, copies, per_call):
            part = np.asarray(cotangents[first : first + per_call], dtype=np.float64)
            # one copy of the batch per cotangent, in one broadcast tape
            tiled = np.tile(angles, (1, len(part)))
            _, vjp = self._run(self._bind(tiled), part.reshape(len(part) * batch, -1))
            per_gate = [np.reshape(g, (len(part), batch)) for g in vjp]
            grads[first : first + len(part)] = np.stack(per_gate, axis=1)
        return grads

    def _shift_vjp(
        self, angles: np.ndarray, cotangents: np.ndarray, needed: Sequence[bool] | None
    ) -> np.ndarray:
        """:meth:`vjp` with shots: one shifted copy of the batch per term of every row's
        rule, stacked into as few broadcast tapes as memory allows, each sampled with
        the same shots. The unshifted batch does not run again: on a priced backend
        the forward pass is paid for once."""
        assert self._rules is not None
        batch = angles.shape[1]
        rows = needed_rows(needed, self.n_params)
        shifts, terms = shift_terms((k, k, self._rules[k]) for k in rows)
        found: list[np.ndarray] = []
        for run in shift_chunks(len(shifts), batch, len(self.skeleton.wires)):
            tiled = shifted_copies(angles, shifts[run])
            result, _ = self._run(self._bind(tiled), None)
            found.extend(np.split(self._join_outputs(result, tiled.shape[1]), len(shifts[run])))
        per_row = contract_shifts(terms, found, cotangents)
        grads = np.zeros((len(cotangents), self.n_params, batch))
        for k, grad in per_row.items():
            grads[:, k, :] = grad
        return grads

    def _checked(self, angles: np.ndarray) -> np.ndarray:
        angles = np.asarray(angles, dtype=np.float64)
        if angles.ndim != 2 or angles.shape[0] != self.n_params:
            raise ValueError(f"expected ({self.n_params}, batch) gate angles, got {angles.shape}")
        return angles
