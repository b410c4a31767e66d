"""A circuit structure whose every gate angle is broadcast, run for values and Jacobians.

A framework that records a circuit once per structure (JAX at trace time) hands the
host a table of gate angles, ``(n_params, batch)``: one row per one-parameter gate,
one column per sample, weights repeated along the batch. Because every angle is
broadcast, one vector-Jacobian product with the cotangent ``e_o`` on every sample
gives ``d out[b, o] / d angle[k, b]`` for all ``b`` and ``k`` at once (samples do not
mix); stacking the outputs along the batch axis gives the whole per-sample Jacobian
in one device call. The framework then applies the chain rule through its own
recording of how the angles came from its inputs and weights.

Everything reaches the device through its public API (``setup_execution_config``,
``preprocess_transforms``, ``execute`` / ``execute_and_compute_vjp``), so on
``qstore.router`` routing, callbacks, the tracker and budgets apply.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
from pennylane.devices import ExecutionConfig
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.tape import QuantumScript

#: Simulated amplitudes per device call above which the Jacobian is split into calls.
MAX_JACOBIAN_AMPLITUDES = 2**25  # 512 MiB of complex128 states


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
        The circuit decomposed to gates that pass :func:`is_gate_with_angle`; its
        ``K`` gate parameters are placeholders, replaced in order on every call.
    device : Device
        A device that computes vector-Jacobian products (``qstore.router``).
    """

    def __init__(self, skeleton: QuantumScript, device: qml.devices.Device):
        self.skeleton = skeleton
        self.device = device
        self.n_params = len(skeleton.get_parameters(trainable_only=False))
        self.widths = output_widths(skeleton.measurements, len(device.wires or skeleton.wires))
        self.n_outputs = sum(self.widths)
        # set up and checked here, when the framework records the circuit, so that a
        # device or circuit this path cannot run fails at once, not inside a callback
        self._config, self._pipeline = self._prepare()
        self._pipelined(skeleton)

    def _bind(self, angles: np.ndarray) -> QuantumScript:
        return self.skeleton.bind_new_parameters(list(angles), list(range(self.n_params)))

    def _prepare(self) -> tuple:
        """Execution config and compile pipeline for this circuit on this device."""
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
        """The device's preprocessing; it must keep one tape and its gate angles."""
        tapes, postprocess = self._pipeline((tape,))
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
        """``(..., K, B)`` angles to ``(..., B, n_outputs)`` values."""
        flat, lead, batch = self._flatten(angles)
        result, _ = self._run(self._bind(flat), None)
        return self._join_outputs(result, flat.shape[1]).reshape(*lead, batch, self.n_outputs)

    def values_and_jacobian(self, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values ``(..., B, O)`` and Jacobians ``(..., B, O, K)`` of ``(..., K, B)`` angles."""
        flat, lead, batch = self._flatten(angles)
        columns = flat.shape[1]
        per_call = max(1, MAX_JACOBIAN_AMPLITUDES // (columns * 2 ** len(self.skeleton.wires)))
        values = None
        jacobian = np.empty((columns, self.n_outputs, self.n_params))
        for first in range(0, self.n_outputs, per_call):
            outputs = range(first, min(first + per_call, self.n_outputs))
            # one copy of the batch per output, each with the cotangent e_o
            cotangent = np.zeros((len(outputs) * columns, self.n_outputs))
            for copy, o in enumerate(outputs):
                cotangent[copy * columns : (copy + 1) * columns, o] = 1.0
            tiled = np.tile(flat, (1, len(outputs)))
            result, vjp = self._run(self._bind(tiled), cotangent)
            if values is None:
                values = self._join_outputs(result, tiled.shape[1])[:columns]
            grads = np.stack([np.reshape(g, (len(outputs), columns)) for g in vjp], axis=-1)
            jacobian[:, outputs.start : outputs.stop] = np.swapaxes(grads, 0, 1)
        assert values is not None
        return (
            values.reshape(*lead, batch, self.n_outputs),
            jacobian.reshape(*lead, batch, self.n_outputs, self.n_params),
        )

    def _flatten(self, angles: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], int]:
        """``(..., K, B)`` to ``(K, L * B)``: vmapped copies join the batch."""
        angles = np.asarray(angles, dtype=np.float64)
        *lead, n_params, batch = angles.shape
        if n_params != self.n_params:
            raise ValueError(f"expected {self.n_params} gate angles, got {n_params}")
        flat = np.moveaxis(angles, -2, 0).reshape(n_params, int(np.prod(lead)) * batch)
        return flat, tuple(lead), batch
