"""A thin adapter that runs routed groups of circuits on one PennyLane device.

The router has already decomposed and validated the circuits for the chosen backend.
Forward executions still pass through the backend device's own preprocessing, which
handles what is specific to it (broadcast expansion, its own decompositions).
Derivatives use the method the router chose: the device's adjoint method on the
router-prepared circuits, or PennyLane's parameter-shift rule with every shifted
circuit sent to the backend in one batch (one sweep where the backend sweeps).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.devices import ExecutionConfig, MCMConfig
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.ops import MidMeasure
from pennylane.tape import QuantumScript

from qstore_pl.router.registry.own import build_device, device_class
from qstore_pl.router.routing.spec import BackendSpec

DERIVATIVE_METHODS = ("adjoint", "parameter-shift")


class Backend:
    """Executes circuits and derivatives on one PennyLane device.

    Parameters
    ----------
    spec : BackendSpec
        Which device to build and with which options.
    num_wires : int
        Width of the device; circuits use wires ``0 .. num_wires - 1``.
    seed : int, optional
        Seed for sampling, passed to devices that take one.
    """

    def __init__(self, spec: BackendSpec, num_wires: int, seed: int | None = None):
        self.spec = spec
        kwargs = dict(spec.device_kwargs)
        if seed is not None and _accepts_seed(spec.device_name):
            kwargs.setdefault("seed", seed)
        self.device = build_device(spec.device_name, num_wires, **kwargs)
        # resolved execution configs that need no circuit: ("execute", MCMConfig) for
        # our own engine, ("adjoint", vjp) for derivatives
        self._configs: dict[tuple, ExecutionConfig] = {}

    def __repr__(self) -> str:
        return f"<Backend {self.spec.name} on {len(self.device.wires)} wires>"

    # forward ------------------------------------------------------------------
    def execute(self, tapes: Sequence[QuantumScript], mcm_config: MCMConfig | None = None) -> tuple:
        """Results of ``tapes``, in order."""
        if self.spec.noise_model is not None:  # a rehearsal: the QPU's circuits and noise
            from qstore_pl.router.execution.rehearsal import rehearse

            native, postprocess = rehearse(tapes, noise_model=self.spec.noise_model)
            return numpy_numbers(tuple(postprocess(self._execute(native, mcm_config))))
        return self._execute(tapes, mcm_config)

    def _execute(self, tapes: Sequence[QuantumScript], mcm_config: MCMConfig | None) -> tuple:
        tapes = [real_parameters(tape) for tape in tapes]
        if not any(isinstance(op, MidMeasure) for tape in tapes for op in tape.operations):
            # the router picks "one-shot" for every finite-shot circuit; a backend
            # without mid-circuit measurements (qsim) would refuse circuits with none.
            # Postselections the router already deferred keep "fill-shots" (jax.jit's).
            fill = mcm_config is not None and mcm_config.postselect_mode == "fill-shots"
            mcm_config = MCMConfig("deferred", "fill-shots") if fill else None
        mcm_config = mcm_config or MCMConfig()
        if self.spec.direct:  # the config of our own engine does not depend on the circuit
            key = ("execute", mcm_config)
            if key not in self._configs:
                self._configs[key] = self._execute_config(mcm_config, None)
            return numpy_numbers(tuple(self.device.execute(tapes, self._configs[key])))
        config = self._execute_config(mcm_config, tapes[0])
        program = self.device.preprocess_transforms(config)
        try:
            device_tapes, postprocess = program(tapes)
        except Exception as err:
            # the router checked the circuits against every backend's capabilities, so
            # this device's own compilation refusing them is this backend's limit
            # read by qstore_pl.router.execution.faults; exceptions take attributes at run time
            err.backend_fault = True  # type: ignore[attr-defined]
            raise
        return numpy_numbers(tuple(postprocess(self.device.execute(device_tapes, config))))

    def kept_states(self, tapes: Sequence[QuantumScript]) -> list | None:
        """The final states of ``tapes`` if the device ran them last and kept them
        (``qstore.batched`` does), one ``(batch, 2**n)`` array per tape; else ``None``."""
        accessor = getattr(self.device, "kept_states", None)
        return accessor(tapes) if accessor is not None else None

    def backprop(
        self, tapes: Sequence[QuantumScript], interface: str, mcm_config: MCMConfig | None = None
    ) -> tuple:
        """Results of ``tapes`` computed with the ML framework's own tensors.

        The framework is tracing the parameters (``diff_method="backprop"``, or a
        framework differentiating a direct ``execute``) and differentiates through the
        simulation, so nothing is converted to NumPy. Only a backend whose
        capabilities say ``backprop`` (default.qubit) can do this.
        """
        shots = bool(tapes[0].shots)
        config = self.device.setup_execution_config(
            ExecutionConfig(
                gradient_method=None if shots else "backprop",
                interface=interface,
                mcm_config=mcm_config or MCMConfig(),
            ),
            tapes[0],
        )
        device_tapes, postprocess = self.device.preprocess_transforms(config)(tapes)
        return tuple(postprocess(self.device.execute(device_tapes, config)))

    def _execute_config(self, mcm_config: MCMConfig, circuit) -> ExecutionConfig:
        return self.device.setup_execution_config(
            ExecutionConfig(
                mcm_config=mcm_config,
                # keep final states for the VJP that usually follows
                use_device_jacobian_product=self.spec.direct,
            ),
            circuit,
        )

    # derivatives ----------------------------------------------------------------
    def jacobian(
        self, tapes: Sequence[QuantumScript], method: str, with_results: bool = False
    ) -> Any:
        """Jacobians of ``tapes`` (and their results first, if ``with_results``)."""
        if method == "adjoint":
            config = self._adjoint_config(vjp=False)
            if with_results:
                return numpy_numbers(self.device.execute_and_compute_derivatives(tapes, config))
            return numpy_numbers(self.device.compute_derivatives(tapes, config))
        _check_method(method)
        return self._parameter_shift(tapes, with_results)

    def vjp(
        self,
        tapes: Sequence[QuantumScript],
        cotangents: Sequence[Any],
        method: str,
        with_results: bool = False,
    ) -> Any:
        """Vector-Jacobian products of ``tapes`` with ``cotangents``.

        PennyLane may batch the cotangents of a tape to get a whole Jacobian from one
        call (``jax.jacobian`` with ``device_vjp=True``): shape ``(batch,)`` for one
        expectation value, ``(n, batch)`` for ``n``. lightning and the parameter-shift
        contraction take one cotangent at a time, so batches are split into rows and
        the rows' products stacked as default.qubit returns them.
        """
        if self.spec.capabilities.broadcast_derivatives:
            return self._device_vjp(tapes, cotangents, method, with_results)
        rows = [cotangent_rows(tape, dy) for tape, dy in zip(tapes, cotangents)]
        if any(r is not None for r in rows):
            return self._vjp_by_rows(tapes, cotangents, rows, method, with_results)
        if any(tape.batch_size for tape in tapes):
            return self._vjp_broadcast(tapes, cotangents, method, with_results)
        return self._device_vjp(tapes, cotangents, method, with_results)

    def _device_vjp(self, tapes, cotangents, method: str, with_results: bool):
        if method == "adjoint":
            config = self._adjoint_config(vjp=True)
            if with_results:
                results, vjps = self.device.execute_and_compute_vjp(tapes, cotangents, config)
                return numpy_numbers((results, _no_parameters_no_entries(vjps, tapes)))
            vjps = self.device.compute_vjp(tapes, cotangents, config)
            return numpy_numbers(_no_parameters_no_entries(vjps, tapes))
        _check_method(method)
        out = self._parameter_shift(tapes, with_results)
        jacs = out[1] if with_results else out
        vjps = contract_vjps(jacs, cotangents, tapes)
        return (out[0], vjps) if with_results else vjps

    def _vjp_broadcast(self, tapes, cotangents, method: str, with_results: bool):
        """VJPs of parameter-broadcast tapes on a backend that takes one circuit at a time.

        Each broadcast tape is split into its circuits; a broadcast parameter's VJP
        gathers its circuits' values, a shared parameter's sums them.
        """
        flat_tapes: list[QuantumScript] = []
        flat_dys, spans, stackers = [], [], []
        for tape, dy in zip(tapes, cotangents):
            start = len(flat_tapes)
            if tape.batch_size:
                circuits, stack = qml.transforms.broadcast_expand(tape)
                single = len(tape.measurements) == 1
                for k, circuit in enumerate(circuits):
                    flat_tapes.append(circuit)
                    flat_dys.append(dy[k] if single else tuple(part[k] for part in dy))
            else:
                stack = None
                flat_tapes.append(tape)
                flat_dys.append(dy)
            spans.append((start, len(flat_tapes)))
            stackers.append(stack)
        out = self.vjp(flat_tapes, flat_dys, method, with_results)
        flat_vjps = out[1] if with_results else out
        vjps, results = [], []
        for tape, (start, end), stack in zip(tapes, spans, stackers):
            parts = flat_vjps[start:end]
            if stack is None:
                vjps.append(parts[0])
            else:
                vjps.append(_combine_broadcast_vjps(tape, parts))
            if with_results:
                got = out[0][start:end]
                results.append(got[0] if stack is None else stack(got))
        return (tuple(results), tuple(vjps)) if with_results else tuple(vjps)

    def _vjp_by_rows(self, tapes, cotangents, rows, method: str, with_results: bool):
        flat_tapes, flat_dys, owners = [], [], []
        for i, (tape, dy, tape_rows) in enumerate(zip(tapes, cotangents, rows)):
            for row in tape_rows if tape_rows is not None else [dy]:
                flat_tapes.append(tape)
                flat_dys.append(row)
                owners.append(i)
        out = self.vjp(flat_tapes, flat_dys, method, with_results)
        vjps = out[1] if with_results else out
        per_tape: list[list] = [[] for _ in tapes]
        for owner, vjp in zip(owners, vjps):
            per_tape[owner].append(vjp)
        stacked = tuple(
            _stack_rows(got) if tape_rows is not None else got[0]
            for got, tape_rows in zip(per_tape, rows)
        )
        if with_results:
            return tuple(out[0][owners.index(i)] for i in range(len(tapes))), stacked
        return stacked

    def _adjoint_config(self, vjp: bool) -> ExecutionConfig:
        key = ("adjoint", vjp)
        if key not in self._configs:
            self._configs[key] = self.device.setup_execution_config(
                ExecutionConfig(gradient_method="adjoint", use_device_jacobian_product=vjp)
            )
        return self._configs[key]

    def _parameter_shift(self, tapes: Sequence[QuantumScript], with_results: bool):
        shifted, processors, sizes = [], [], []
        for tape in tapes:
            grad_tapes, fn = qml.gradients.param_shift(tape)
            shifted.extend(grad_tapes)
            processors.append(fn)
            sizes.append(len(grad_tapes))
        # originals share the structure of their shifted copies: one batch, one sweep
        batch = list(tapes) + shifted if with_results else shifted
        results = self.execute(batch) if batch else ()
        offset = len(tapes) if with_results else 0
        jacs = []
        for fn, size in zip(processors, sizes):
            jacs.append(fn(results[offset : offset + size]))
            offset += size
        if with_results:
            return tuple(results[: len(tapes)]), tuple(jacs)
        return tuple(jacs)


def _no_parameters_no_entries(vjps: Sequence[Any], tapes: Sequence[QuantumScript]) -> tuple:
    """``vjps`` with an empty tuple for each tape without trainable parameters, as
    default.qubit returns it (lightning returns an empty array, which JAX's callback
    counts as one output too many)."""
    return tuple(v if tape.trainable_params else () for v, tape in zip(vjps, tapes))


def contract_vjps(jacs: Sequence[Any], cotangents: Sequence[Any], tapes: Sequence[QuantumScript]):
    """Vector-Jacobian products from Jacobians, one per tape.

    Each is a tuple with one entry per trainable parameter, as default.qubit and
    lightning return them: jax's callback expects one output per parameter.
    """
    vjps = []
    for jac, dy, tape in zip(jacs, cotangents, tapes):
        if len(tape.measurements) > 1:
            vjp = qml.gradients.compute_vjp_multi(dy, jac)
        else:
            vjp = qml.gradients.compute_vjp_single(dy, jac)
        vjps.append(tuple(np.reshape(np.asarray(vjp), -1)))
    return tuple(vjps)


def numpy_numbers(result: Any) -> Any:
    """``result`` with Python and single-precision numbers made float64/complex128,
    and 0-d arrays made numpy scalars.

    The type and dtype of a result must not depend on where it was routed. lightning returns
    expectation values as Python floats, which PennyLane's torch interface turns into
    float32 tensors, and lightning with ``c_dtype=complex64`` returns float32 arrays,
    while default.qubit and qstore.qsim return float64.
    """
    if isinstance(result, (tuple, list)):
        return type(result)(numpy_numbers(r) for r in result)
    if type(result) is float:
        return np.float64(result)
    if type(result) is complex:
        return np.complex128(result)
    if isinstance(result, np.ndarray) and result.ndim == 0:
        result = result[()]  # a numpy scalar, as default.qubit returns (IonQ gives 0-d arrays)
    if isinstance(result, (np.ndarray, np.generic)) and result.dtype in _SINGLE_TO_DOUBLE:
        return result.astype(_SINGLE_TO_DOUBLE[result.dtype])
    return result


_SINGLE_TO_DOUBLE: dict[np.dtype, type] = {
    np.dtype(np.float32): np.float64,
    np.dtype(np.complex64): np.complex128,
}


def cotangent_rows(tape: QuantumScript, dy: Any) -> list | None:
    """The rows of a batched cotangent for a tape of expectation values and
    probabilities, else ``None``.

    A cotangent is batched when it has one more axis than the tape's result (which
    already has one for a parameter-broadcast tape, and probabilities one more).
    """
    if not all(isinstance(mp, (ExpectationMP, ProbabilityMP)) for mp in tape.measurements):
        return None  # only default.qubit differentiates the rest, and it takes batches
    single = len(tape.measurements) == 1
    parts = [dy] if single else list(dy)
    broadcast = 1 if tape.batch_size else 0
    ndims = [broadcast + isinstance(mp, ProbabilityMP) for mp in tape.measurements]
    if all(np.ndim(part) <= ndim for part, ndim in zip(parts, ndims)):
        return None
    batch = np.shape(parts[0])[0]
    if single:
        return [dy[b] for b in range(batch)]
    return [tuple(part[b] for part in parts) for b in range(batch)]


def _combine_broadcast_vjps(tape: QuantumScript, parts: Sequence[Any]) -> tuple:
    """One broadcast tape's VJP from the VJPs of its circuits."""
    combined = []
    for p in range(len(tape.trainable_params)):
        op, _, index = tape.get_operation(p)
        values = np.array([np.asarray(part[p]) for part in parts])
        broadcast = np.ndim(op.data[index]) > op.ndim_params[index]
        combined.append(values if broadcast else values.sum(axis=0))
    return tuple(combined)


def _stack_rows(vjps: Sequence[Any]) -> tuple:
    """Row VJPs, one per cotangent row, as one ``(batch,)`` array per parameter."""
    table = np.stack([np.reshape(np.asarray(v), -1) for v in vjps])
    return tuple(table[:, p] for p in range(table.shape[1]))


def real_parameters(tape: QuantumScript) -> QuantumScript:
    """``tape`` with gate parameters that are complex with zero imaginary part made real.

    For the adjoint method the router turns probs and state measurements into a state
    measurement and casts every gate parameter to complex, so that the ML framework
    differentiates through the cast. The forward pass of such a circuit can still be
    routed to a backend that takes only real angles (lightning.qubit raises TypeError);
    its values are the same with the real parts.
    """
    params = tape.get_parameters(trainable_only=False, operations_only=True)
    indices, real = [], []
    for i, p in enumerate(params):
        if isinstance(p, float) or (isinstance(p, np.ndarray) and p.dtype.kind != "c"):
            continue  # the common case, without the dispatch below
        if qml.math.is_abstract(p) or "complex" not in qml.math.get_dtype_name(p):
            continue
        if qml.math.allclose(qml.math.imag(p), 0, rtol=0, atol=0):
            indices.append(i)
            real.append(qml.math.real(p))
    # operation parameters come first in the tape's parameter numbering
    return tape.bind_new_parameters(real, indices) if indices else tape


def _check_method(method: str) -> None:
    if method not in DERIVATIVE_METHODS:
        raise ValueError(f"unknown derivative method {method!r}; use one of {DERIVATIVE_METHODS}")


def _accepts_seed(device_name: str) -> bool:
    cls = device_class(device_name)
    return cls is not None and "seed" in inspect.signature(cls).parameters
