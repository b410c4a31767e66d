"""The ``qstore.batched`` device: every circuit of a batch in one vectorised simulation.

Circuits that share a structure (a TorchLayer batch arrives as one broadcast tape; a
list of tapes from ``qml.execute`` is grouped) run as one simulation over a batch of
states, and their derivatives come from one adjoint sweep: a vector-Jacobian product
costs one forward and one backward pass for the whole batch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    validate_adjoint_trainable_params,
    validate_device_wires,
    validate_measurements,
    validate_observables,
)
from pennylane.devices.qubit.simulate import measure_final_state
from pennylane.exceptions import DeviceError
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.tape import QuantumScript, QuantumScriptBatch
from pennylane.transforms import broadcast_expand, defer_measurements
from pennylane.transforms.core import CompilePipeline
from pennylane.typing import ResultBatch
from pennylane.wires import WiresLike

from qstore_pl.devices.adjoint_support import KEPT as ADJOINT_KEPT
from qstore_pl.devices.adjoint_support import adjoint_support
from qstore_pl.devices.batched.adjoint import forward, vjp_sweep
from qstore_pl.devices.batched.kernel import StateKernel
from qstore_pl.devices.batched.measure import (
    measure_all,
    output_sizes,
    supports_measurement,
)
from qstore_pl.devices.batched.memory import check_states_fit
from qstore_pl.devices.batched.program import BoundProgram, Program
from qstore_pl.devices.batched.qsim_kernel import QsimStateKernel
from qstore_pl.devices.execution_config import (
    DEVICE_GRADIENTS,
    deferred_mcm_only,
    device_gradient_settings,
    needs_jacobians,
    reject_device_options,
)
from qstore_pl.devices.grouping import group_by_structure, ndim, structure_key
from qstore_pl.devices.preprocess_cache import skip_known_structures
from qstore_pl.devices.wire_count import check_wire_count
from qstore_pl.support.bounded_cache import BoundedCache
from qstore_pl.support.threads import numba_threads

# (tape positions in the batch, bound program, final states)
_Group = tuple[list[int], BoundProgram, np.ndarray]
_PROGRAM_CACHE_SIZE = 64
#: Widest gate applied as one dense matrix; wider ones are decomposed (their
#: decompositions are cheaper than a dense matrix's ``2**k`` products per amplitude).
MAX_GATE_WIRES = 4
#: Gates applied as one matrix on any number of wires: decomposing a general unitary
#: takes ``O(4**k)`` gates, more than the dense matrix's ``2**k`` per amplitude.
DENSE_ANY_WIDTH = frozenset({"QubitUnitary", "ControlledQubitUnitary"})
#: From this width, complex64 circuits with matrices on several wires run on qsim's
#: kernels, which fuse gates into blocks of wires: a random circuit of every gate
#: family (a third of its gates on two wires) took 10.0 against 16.4 s for a train
#: step at 20 qubits. Circuits of one-wire gates and permutations (W1, the templates)
#: stay on the row kernel at every width, whose runs of one-wire gates go block by
#: block through the CPU cache: W1's engine step took 3.4-3.9 against 5.0-5.3 s at 20
#: qubits (batch 32), 7.6 against 9.9-12.0 s at 24 (batch 2), on 2 x86 cores. A
#: single circuit's forward pass goes to qsim too: the row kernel runs rows in
#: parallel, so one row gets one thread (W1 at 24 qubits: 1.0-1.5 against 0.7-0.9 s).
#: Its backward sweep stays on the row kernel, where ψ and λ are two rows, and where
#: the sweep reuses its planes; qsim allocates and faults in a fresh state per call
#: (W1's backward at 24 qubits: 2.5-2.7 against 4.4 s).
QSIM_MIN_WIRES = 20


def _matrices_on_several_wires(program: Program) -> bool:
    """Whether a gate of ``program`` is a matrix or diagonal on several wires (not a
    permutation): what qsim's fused kernels apply faster than the row kernel."""
    found = program.__dict__.get("_matrices_on_several_wires")
    if found is None:
        found = any(len(g.wires) > 1 and g.kind != "perm" for g in program.gates)
        program.__dict__["_matrices_on_several_wires"] = found
    return found


def _supported_gate(op) -> bool:
    if op.name in DENSE_ANY_WIDTH:
        return True
    return op.has_matrix and len(op.wires) <= MAX_GATE_WIRES and op.name != "Snapshot"


def _differentiable_gate(op) -> bool:
    if op.num_params == 0 or not any(qml.math.requires_grad(d) for d in op.data):
        return _supported_gate(op)
    return op.num_params == 1 and op.has_generator and _supported_gate(op)


def _differentiable_measurement(mp) -> bool:
    if isinstance(mp, ProbabilityMP):
        return mp.obs is None
    return isinstance(mp, ExpectationMP) and mp.obs is not None and supports_measurement(mp)


@simulator_tracking
@single_tape_support
class BatchedDevice(Device):
    """Vectorised state-vector simulator for batches of same-structure circuits.

    Parameters
    ----------
    wires : int or Iterable, optional
        Number of wires or wire labels.
    shots : int, optional
        Finite shots sample from the batch's final states; derivatives are analytic
        only (the adjoint method).
    c_dtype : numpy dtype
        ``np.complex128`` (default) or ``np.complex64``. Single precision halves memory
        traffic; expectation values then agree with complex128 to about ``1e-6``.
    kernel : {"auto", "jit", "qsim"}
        The compiled row kernel, qsim's kernels (complex64 only), or (``"auto"``) qsim
        from ``qsim_min_wires`` wires up in complex64 for circuits with matrices on
        several wires and for single circuits.
    qsim_min_wires : int
        The width from which ``"auto"`` uses qsim.
    seed : int or numpy Generator, optional
        Seed for sampling with finite shots.

    Notes
    -----
    Supported: any gate with a matrix on at most four wires, ``QubitUnitary`` and
    ``ControlledQubitUnitary`` on any number of wires, parameter broadcasting,
    ``expval``/``var`` of any observable with a matrix or Pauli representation,
    ``probs`` and ``state``. Derivatives: the adjoint method for ``expval`` and
    ``probs``, as vector-Jacobian products (one backward sweep for the batch) or
    Jacobians (one sweep with an adjoint state per output).
    """

    name = "qstore.batched"
    config_filepath = Path(__file__).with_name("batched.toml")
    _device_options = ()

    def __init__(
        self,
        wires: WiresLike | int | None = None,
        shots: int | Sequence[int] | None = None,
        c_dtype: type[np.complexfloating] = np.complex128,
        kernel: str = "auto",
        qsim_min_wires: int = QSIM_MIN_WIRES,
        seed: int | np.random.Generator | None = None,
    ):
        check_wire_count(wires, self.name)
        super().__init__(wires=wires, shots=shots)
        dtype = np.dtype(c_dtype)
        if dtype not in (np.complex64, np.complex128):
            raise ValueError(f"c_dtype must be complex64 or complex128, got {c_dtype!r}")
        if kernel not in ("auto", "jit", "qsim"):
            raise ValueError(f"kernel must be 'auto', 'jit' or 'qsim', got {kernel!r}")
        if kernel == "qsim" and dtype != np.complex64:
            raise ValueError("kernel='qsim' computes in complex64; pass c_dtype=np.complex64")
        self.c_dtype = dtype.type
        self._rng = np.random.default_rng(seed)
        self._jit = StateKernel(dtype)
        self._qsim = QsimStateKernel() if dtype == np.complex64 and kernel != "jit" else None
        self._qsim_min_wires = 0 if kernel == "qsim" else qsim_min_wires
        self._programs: BoundedCache[Hashable, Program] = BoundedCache(_PROGRAM_CACHE_SIZE)
        # the last execution's groups and final states, for the VJP that follows it
        self._executed: tuple[tuple[QuantumScript, ...], list[_Group]] | None = None
        self._supports_adjoint: BoundedCache[Hashable, bool] = BoundedCache(ADJOINT_KEPT)
        self._pipelines: dict[Hashable, CompilePipeline] = {}
        # structure -> on wires 0 .. k-1
        self._wire_maps: BoundedCache[Hashable, bool] = BoundedCache(_PROGRAM_CACHE_SIZE)

    @property
    def rng(self) -> np.random.Generator:
        """The generator finite shots sample with (seeded by ``seed``)."""
        return self._rng

    # ----------------------------------------------------------- configuration
    def setup_execution_config(
        self, config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> ExecutionConfig:
        config = config or ExecutionConfig()
        reject_device_options(config, self.name)
        updated: dict[str, Any] = {"convert_to_numpy": True}
        if config.gradient_method in DEVICE_GRADIENTS:
            updated.update(device_gradient_settings(config, needs_jacobians(config)))
        updated["mcm_config"] = deferred_mcm_only(config, self.name)
        return replace(config, **updated)

    def preprocess_transforms(
        self, execution_config: ExecutionConfig | None = None
    ) -> CompilePipeline:
        config = execution_config or self.setup_execution_config()
        # one pipeline per setting, which remembers the structures it leaves alone
        key = (config.gradient_method, config.use_device_jacobian_product)
        if key not in self._pipelines:
            self._pipelines[key] = skip_known_structures(self._build_pipeline(config))
        return self._pipelines[key]

    def _build_pipeline(self, config: ExecutionConfig) -> CompilePipeline:
        pipeline = CompilePipeline()
        pipeline.add_transform(defer_measurements, allow_postselect=False)
        pipeline.add_transform(
            decompose, stopping_condition=_supported_gate, device_wires=self.wires, name=self.name
        )
        pipeline.add_transform(validate_device_wires, self.wires, name=self.name)
        pipeline.add_transform(
            validate_measurements, analytic_measurements=supports_measurement, name=self.name
        )
        if config.gradient_method == "adjoint":
            name = f"adjoint + {self.name}"
            pipeline.add_transform(
                decompose,
                stopping_condition=_differentiable_gate,
                device_wires=self.wires,
                name=name,
                skip_initial_state_prep=False,
            )
            pipeline.add_transform(
                validate_observables, lambda obs: obs.has_matrix or obs.pauli_rep, name=name
            )
            pipeline.add_transform(
                validate_measurements,
                analytic_measurements=_differentiable_measurement,
                name=name,
            )
            pipeline.add_transform(validate_adjoint_trainable_params)
            if not config.use_device_jacobian_product:
                pipeline.add_transform(broadcast_expand)
        return pipeline

    def supports_derivatives(
        self, execution_config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> bool:
        if execution_config is None:
            return True
        if execution_config.gradient_method not in DEVICE_GRADIENTS:
            return False
        if circuit is None:
            return True
        if circuit.shots:
            return False
        key = structure_key(circuit)
        return adjoint_support(self, self._supports_adjoint, key, execution_config, circuit)

    def supports_vjp(
        self, execution_config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> bool:
        return self.supports_derivatives(execution_config, circuit)

    # ---------------------------------------------------------------- execution
    def execute(
        self, circuits: QuantumScriptBatch, execution_config: ExecutionConfig | None = None
    ) -> ResultBatch:
        config = execution_config or ExecutionConfig()
        groups = self._simulate(circuits)
        self._executed = (tuple(circuits), groups) if config.use_device_jacobian_product else None
        results: list[Any] = [None] * len(circuits)
        for indices, bound, states in groups:
            self._collect(results, indices, bound, states)
        return tuple(results)

    def compute_vjp(
        self,
        circuits: QuantumScriptBatch,
        cotangents: tuple,
        execution_config: ExecutionConfig | None = None,
    ) -> tuple:
        return self._vjp(circuits, cotangents)[1]

    def execute_and_compute_vjp(
        self,
        circuits: QuantumScriptBatch,
        cotangents: tuple,
        execution_config: ExecutionConfig | None = None,
    ) -> tuple[ResultBatch, tuple]:
        return self._vjp(circuits, cotangents, want_results=True)

    def compute_derivatives(
        self, circuits: QuantumScriptBatch, execution_config: ExecutionConfig | None = None
    ) -> tuple:
        return self._jacobian(circuits)[1]

    def execute_and_compute_derivatives(
        self, circuits: QuantumScriptBatch, execution_config: ExecutionConfig | None = None
    ) -> tuple[ResultBatch, tuple]:
        return self._jacobian(circuits, want_results=True)

    def kept_states(self, circuits: QuantumScriptBatch) -> list[np.ndarray] | None:
        """The final states of ``circuits`` if they are the last execution's (kept for
        the VJP that follows): per circuit an array ``(batch, 2**n)`` over wires
        ``0 .. n-1``; ``None`` if this device does not hold them."""
        if self._executed is None:
            return None
        tapes, groups = self._executed
        if len(tapes) != len(circuits) or not all(map(_same_circuit, tapes, circuits)):
            return None
        if not all(map(self._standard_wires, tapes)):
            return None  # simulated on relabelled wires
        states: list[Any] = [None] * len(tapes)
        for indices, bound, psi in groups:
            for i, s in zip(indices, bound.slices):
                states[i] = psi[s]
        return states

    # ------------------------------------------------------------- internals
    def row_kernel(self) -> StateKernel:
        """The compiled row kernel in this device's precision, for programs that bind
        their own tables and initial states (circuit-input layers)."""
        return self._jit

    def kernel_for(self, bound: BoundProgram, backward: bool = False):
        """qsim's kernels for wide complex64 circuits with matrices on several wires or
        (forward only) a single row (:data:`QSIM_MIN_WIRES`), or for every circuit with
        ``kernel="qsim"``; the compiled row kernel otherwise."""
        program = bound.program
        if self._qsim is None or program.num_wires < self._qsim_min_wires:
            return self._jit
        if (
            self._qsim_min_wires == 0
            or (bound.batch == 1 and not backward)
            or _matrices_on_several_wires(program)
        ):
            return self._qsim
        return self._jit

    def _program(self, key: Hashable, tape: QuantumScript) -> Program:
        return self._programs.get_or_build(key, lambda: Program(tape))

    def _simulate(self, circuits) -> list[_Group]:
        """Bind and run every structure group: ``(indices, bound program, final states)``.

        The groups of the last execution are reused when asked about the same tapes
        (PennyLane executes, then asks for the VJP of the very same tapes).
        """
        if self._executed is not None:
            executed, groups = self._executed
            if len(executed) == len(circuits) and all(map(_same_circuit, executed, circuits)):
                return groups
        tapes = [t if self._standard_wires(t) else t.map_to_standard_wires() for t in circuits]
        groups = []
        for group in group_by_structure(tapes):
            bound = self._program(group.key, group.tapes[0]).bind(group.tapes)
            kernel = self.kernel_for(bound)
            check_states_fit(
                self.name, bound.program.num_wires, bound.batch, self.c_dtype,
                kernel.buffers.kept_free_bytes(),
            )  # fmt: skip
            with threads_for(bound):
                groups.append((group.indices, bound, forward(kernel, bound)))
        return groups

    def _standard_wires(self, tape: QuantumScript) -> bool:
        """Whether ``tape`` already acts on wires ``0 .. k-1``, asked once per structure.

        The structure key holds every gate's and measurement's wire labels (and work
        wires, as hyperparameters), which is all that ``map_to_standard_wires`` reads.
        """
        return self._wire_maps.get_or_build(
            structure_key(tape), lambda: tape.map_to_standard_wires() is tape
        )

    def _collect(self, results: list, indices, bound: BoundProgram, states) -> None:
        kernel, n = self.kernel_for(bound), _width(bound)
        if bound.tapes[0].shots:  # grouped by structure, so every tape has shots
            for tape_no, (i, s) in enumerate(zip(indices, bound.slices)):
                tape, broadcast = bound.tapes[tape_no], bool(bound.batch_sizes[tape_no])
                rows = states[s].astype(np.complex128)
                rows /= np.linalg.norm(rows, axis=1, keepdims=True)
                state = rows.reshape((-1,) + (2,) * n)
                state = state if broadcast else state[0]
                results[i] = measure_final_state(tape, state, broadcast, rng=self._rng)
            return
        values = measure_all(kernel, states, bound.program.measurements, n)
        for tape_no, (i, s) in enumerate(zip(indices, bound.slices)):
            results[i] = _per_tape(values, s, bound.batch_sizes[tape_no])

    def _vjp(self, circuits, cotangents, want_results=False):
        results: list[Any] = [None] * len(circuits)
        vjps: list[Any] = [None] * len(circuits)
        for indices, bound, psi in self._simulate(circuits):
            kernel = self.kernel_for(bound, backward=True)
            measurements = bound.program.measurements
            dys, stacked = _cotangent_columns(
                [cotangents[i] for i in indices], bound, len(measurements)
            )
            with threads_for(bound):
                trainable = _trainable_gates(bound)
                grads = vjp_sweep(kernel, bound, psi, measurements, dys, trainable, stacked)
            for tape_no, i in enumerate(indices):
                vjps[i] = _tape_vjp(bound, tape_no, grads, stacked)
            if want_results:
                self._collect(results, indices, bound, psi)
        return tuple(results), tuple(vjps)

    def _jacobian(self, circuits, want_results=False):
        results: list[Any] = [None] * len(circuits)
        jacs: list[Any] = [None] * len(circuits)
        for indices, bound, psi in self._simulate(circuits):
            if any(bound.batch_sizes):
                raise DeviceError(
                    "Jacobians of parameter-broadcast tapes need broadcast_expand; use "
                    "device_vjp=True or let the device preprocess the tapes"
                )
            kernel = self.kernel_for(bound, backward=True)
            n = _width(bound)
            measurements = bound.program.measurements
            sizes = output_sizes(measurements, n)
            outputs = sum(sizes)
            # one adjoint state per output: cotangents are the unit vectors
            dys, offset = [], 0
            for size in sizes:
                eye = np.zeros((outputs, bound.batch, size))
                for q in range(size):
                    eye[offset + q, :, q] = 1.0
                dys.append(
                    eye.reshape(outputs * bound.batch, size).squeeze(-1)
                    if size == 1
                    else eye.reshape(outputs * bound.batch, size)
                )
                offset += size
            with threads_for(bound):
                trainable = _trainable_gates(bound)
                grads = vjp_sweep(kernel, bound, psi, measurements, dys, trainable, outputs)
            for tape_no, i in enumerate(indices):
                jacs[i] = _tape_jacobian(bound, tape_no, grads, sizes)
            if want_results:
                self._collect(results, indices, bound, psi)
        return tuple(results), tuple(jacs)


def _same_circuit(a: QuantumScript, b: QuantumScript) -> bool:
    """Whether two tapes hold the same gates with the same parameters.

    PennyLane hands the device fresh tape objects for the forward pass and for the
    VJP that follows it; comparing them costs far less than simulating again. The
    structure key compares gate names, wires, hyperparameters and measurements
    (a tape's key is computed once); the parameters are compared exactly, shapes
    included, scalars in one array comparison.
    """
    if a is b:
        return True
    if a.trainable_params != b.trainable_params or structure_key(a) != structure_key(b):
        return False
    left, right = [], []  # scalar parameters, compared at once
    for x, y in zip(a.operations, b.operations):
        xs, ys = x.data, y.data
        if xs is ys:
            continue
        for p, q in zip(xs, ys, strict=True):
            if p is q:
                continue
            if ndim(p) == 0 and ndim(q) == 0:
                left.append(p)
                right.append(q)
            elif np.shape(p) != np.shape(q) or not np.array_equal(p, q):
                return False
    return not left or bool(np.array_equal(np.array(left), np.array(right)))


def threads_for(bound: BoundProgram):
    """numba's threads for a group's kernels: by its amplitudes and the machine's load."""
    return numba_threads(bound.batch << _width(bound))


def _width(bound: BoundProgram) -> int:
    return bound.program.num_wires


def _per_tape(values: list[np.ndarray], s: slice, batch_size: int | None):
    out = [v[s] if batch_size else v[s][0] for v in values]
    return out[0] if len(out) == 1 else tuple(out)


def _trainable_gates(bound: BoundProgram) -> frozenset[int]:
    """Positions in ``program.gates`` of gates with a trainable parameter in any tape."""
    program = bound.program
    position = program.position
    trainable = set()
    for tape in bound.tapes:
        for param in tape.trainable_params:
            if param >= len(program.param_owner):
                raise DeviceError(
                    f"parameter {param} of the circuit belongs to a measured observable; the "
                    "adjoint method differentiates gate parameters only. Pass observable "
                    "coefficients as constants, or use diff_method='parameter-shift'"
                )
            op_index, _ = program.param_owner[param]
            if op_index in position:
                trainable.add(position[op_index])
    for p in trainable:
        template = program.gates[p]
        if template.generator is None:
            raise DeviceError(
                f"{template.name} has trainable parameters but no single generator, so the "
                "adjoint method cannot differentiate it; pass its parameters as trainable "
                "interface tensors so that preprocessing decomposes it, or use "
                "diff_method='parameter-shift'"
            )
    return frozenset(trainable)


def _cotangent_columns(cotangents, bound: BoundProgram, num_measurements: int):
    """Cotangents per measurement as ``(stacked * B, ...)`` arrays.

    A cotangent with one more leading axis than the result is a stack of cotangents
    (JAX's vmap for Jacobians); ``stacked`` says how many.
    """
    n = bound.program.num_wires
    per_measurement: list[list] = [[] for _ in range(num_measurements)]
    stacked = 1
    for tape_no, dy in enumerate(cotangents):
        batch_size = bound.batch_sizes[tape_no]
        dy = (dy,) if num_measurements == 1 else tuple(dy)
        for m, (mp, value) in enumerate(zip(bound.program.measurements, dy)):
            value = np.asarray(value, dtype=float)
            result_ndim = (1 if batch_size else 0) + (1 if isinstance(mp, ProbabilityMP) else 0)
            if value.ndim == result_ndim + 1:
                stacked = value.shape[0]
            else:
                value = value[None]
            rows = batch_size or 1
            size = 2 ** (len(mp.wires) or n) if isinstance(mp, ProbabilityMP) else 1
            per_measurement[m].append(value.reshape(value.shape[0], rows, size))
    columns = []
    for parts in per_measurement:
        parts = [np.broadcast_to(p, (stacked, *p.shape[1:])) for p in parts]
        joined = np.concatenate(parts, axis=1)  # (stacked, B, size)
        joined = joined.reshape(stacked * bound.batch, joined.shape[-1])
        columns.append(joined[:, 0] if joined.shape[-1] == 1 else joined)
    return columns, stacked


def _gate_grad(bound: BoundProgram, grads, param: int, stacked: int, tape_no: int):
    """One trainable parameter's derivative for one tape: ``(stacked, rows)``."""
    program = bound.program
    if param >= len(program.param_owner):
        return None  # an observable's parameter: not differentiated by the adjoint method
    op_index, _ = program.param_owner[param]
    position = program.position.get(op_index)
    if position is None or position not in grads:
        return None
    values = grads[position].reshape(stacked, bound.batch)[:, bound.slices[tape_no]]
    broadcast = bound.parameters[tape_no].broadcast[program.slot[op_index]][0]
    return values if broadcast else values.sum(axis=1)


def _tape_vjp(bound: BoundProgram, tape_no: int, grads, stacked: int):
    tape = bound.tapes[tape_no]
    out = []
    for param in tape.trainable_params:
        value = _gate_grad(bound, grads, param, stacked, tape_no)
        if value is None:
            value = np.zeros(stacked)
        out.append(value[0] if stacked == 1 else value)
    return tuple(np.asarray(v) for v in out)


def _tape_jacobian(bound: BoundProgram, tape_no: int, grads, sizes: list[int]):
    tape = bound.tapes[tape_no]
    outputs = sum(sizes)
    columns = []  # per trainable parameter: (outputs,)
    for param in tape.trainable_params:
        value = _gate_grad(bound, grads, param, outputs, tape_no)
        columns.append(np.zeros(outputs) if value is None else np.asarray(value).reshape(outputs))
    per_measurement, offset = [], 0
    for _mp, size in zip(bound.program.measurements, sizes):
        entries = [np.array(c[offset]) if size == 1 else c[offset : offset + size] for c in columns]
        per_measurement.append(entries[0] if len(entries) == 1 else tuple(entries))
        offset += size
    if not columns:
        return () if len(sizes) == 1 else tuple(() for _ in sizes)
    return per_measurement[0] if len(sizes) == 1 else tuple(per_measurement)
