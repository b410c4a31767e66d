"""Circuit-input layers without a tape per sample: the model compiled once, bound per call.

TFQ compiles a circuit with symbols once and only binds numbers per call. Here the
model :class:`~qstore_pl.circuits.ParametrizedCircuit` is bound once to probe values
(zero, each unit vector, two random points, as one broadcast binding) and decomposed
to the gates every backend runs; when its angles are an affine function of the
symbol values (templates pass symbols through, scaled by constants) the map is
exact, and a call binds the whole batch with one matrix product. The data circuits
(no gradients, as in TFQ) run forward per structure straight from the circuit tensor;
the model's forward pass and adjoint sweep run once for the batch
(:mod:`qstore_pl.devices.batched.circuit_inputs`).

The router decides first (:mod:`qstore_pl.router.execution.circuit_inputs`). When
it picks a backend other than its batched engine, or the model cannot be compiled
(angles not affine in the symbols, wires that are not ``0 .. n-1``, ...), the layer
runs its tapes through the router as before and says why once. When the engine fails
on a batch (a backend fault: out of memory, a kernel's failure), forward or VJP, the
batch runs again as tapes through the router, which falls back as it does for its own
failures and reports this one first; the layer warns once
(:class:`~qstore_pl.layers.compiled.CompiledPathWarning`).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import autograd.numpy as anp
import numpy as np
import pennylane as qml
from autograd import make_vjp
from autograd.extend import defvjp, primitive
from autograd.tracer import Box
from pennylane.tape import QuantumScript

from qstore_pl.circuits import ParametrizedCircuit, decode_circuits
from qstore_pl.circuits.parametrized import BindError
from qstore_pl.devices.batched.circuit_inputs import (
    AffineModel,
    CircuitInputProgram,
    ForwardRun,
    probe_rows,
)
from qstore_pl.layers.compiled import CompiledPathWarning
from qstore_pl.router.device import RouterDevice
from qstore_pl.router.execution.circuit_inputs import PATH_NOTE, choose_engine
from qstore_pl.router.execution.compiled import (
    EngineChoice,
    EngineFailure,
    compiled_run,
    engine_failure,
)
from qstore_pl.router.execution.faults import after_failure, is_backend_fault
from qstore_pl.router.execution.task import Task
from qstore_pl.templates import PORTABLE_GATES

logger = logging.getLogger(__name__)

#: What ``CircuitBatch.path`` says when the compiled path ran.
COMPILED = "compiled"


class NotCompilable(ValueError):
    """The model circuit cannot be bound as an affine map of its symbols."""


class EngineFailed(Exception):
    """The engine failed on a compiled batch's forward pass: run it as tapes.

    Attributes
    ----------
    failure : EngineFailure
        What failed and why, for the router's report.
    """

    def __init__(self, failure: EngineFailure):
        super().__init__(failure.reason)
        self.failure = failure


def affine_model(model: ParametrizedCircuit, measurements: Sequence, num_wires: int) -> AffineModel:
    """Decompose ``model`` once and find its angles as an affine map of the symbols.

    Raises
    ------
    NotCompilable
        If the decomposition depends on the values, an angle is not affine in them,
        or a gate or wire is outside what the compiled program runs.
    """
    sizes = [int(np.prod(shape, dtype=int)) for shape in model.symbols.values()]
    rows = probe_rows(sizes, np.random.default_rng(0))
    probes = len(rows)
    try:
        broadcast = _decomposed(model, _split(rows, model.symbols))
        single = _decomposed(model, _split(rows[-1], model.symbols))
    except (BindError, ValueError, TypeError) as err:
        raise NotCompilable(f"binding a batch of probe values failed ({err})") from err
    ops = broadcast.operations
    if [(op.name, op.wires) for op in ops] != [(op.name, op.wires) for op in single.operations]:
        raise NotCompilable("the decomposed circuit changes with the symbol values")
    columns = []
    for op in ops:
        if op.name not in PORTABLE_GATES or len(op.data) > 1:
            raise NotCompilable(f"{op.name} is not a one-parameter portable gate")
        if any(not isinstance(w, int) or not 0 <= w < num_wires for w in op.wires):
            raise NotCompilable(
                f"{op.name} acts on wires {op.wires.tolist()}, not 0..{num_wires - 1}"
            )
        if op.data:
            value = np.asarray(qml.math.unwrap(op.data[0]), dtype=float)
            if value.shape not in ((), (probes,)):
                raise NotCompilable(f"{op.name} has a parameter of shape {value.shape}")
            columns.append(np.broadcast_to(value, (probes,)))
    n_values = sum(sizes)
    table = np.array(columns).reshape(len(columns), probes)
    offset = table[:, 0].copy()
    jacobian = table[:, 1 : 1 + n_values] - offset[:, None]
    predicted = offset[:, None] + jacobian @ rows[1 + n_values :].T
    if not np.allclose(predicted, table[:, 1 + n_values :], rtol=1e-9, atol=1e-9):
        raise NotCompilable("the gate angles are not an affine function of the symbols")
    for mp in measurements:
        if any(not isinstance(w, int) or not 0 <= w < num_wires for w in mp.wires):
            raise NotCompilable(f"an observable acts on wires {mp.wires.tolist()}")
    tape = QuantumScript(single.operations, list(measurements))
    return AffineModel(tape, offset, jacobian)


def _decomposed(model: ParametrizedCircuit, values: dict) -> QuantumScript:
    [tape], _ = qml.transforms.decompose(model.bind(**values), gate_set=PORTABLE_GATES)
    return tape


def _split(flat: np.ndarray, symbols: dict) -> dict:
    """Flat values (``(n,)`` or ``(R, n)``) as one array per symbol."""
    lead = flat.shape[:-1]
    values, start = {}, 0
    for name, shape in symbols.items():
        size = int(np.prod(shape, dtype=int))
        values[name] = flat[..., start : start + size].reshape(lead + tuple(shape))
        start += size
    return values


class CompiledInputs:
    """The compiled path of one :class:`~qstore_pl.layers.circuit_batch.CircuitBatch`.

    Parameters
    ----------
    model : ParametrizedCircuit
        The model circuit.
    measurements : Sequence
        The layer's expectation values.
    router : RouterDevice
        The router that decides and accounts.
    num_wires : int
        Wires of the circuits.
    """

    def __init__(
        self,
        model: ParametrizedCircuit,
        measurements: Sequence,
        router: RouterDevice,
        num_wires: int,
    ):
        self.model = model
        self.measurements = list(measurements)
        self.router = router
        self.num_wires = num_wires
        self._affine: AffineModel | NotCompilable | None = None
        self._programs: dict[str, CircuitInputProgram] = {}
        self._representatives: dict[int, QuantumScript] = {}
        self._said: set[str] = set()
        self._kept = threading.local()
        #: which path the last call took: "compiled", or "tapes: <why>"
        self.path: str | None = None
        #: the tape path as a function of (circuit tensor, flat symbol values), set by
        #: the layer: what a failed VJP is computed by instead
        self.tapes: Callable[[Any, Any], Any] | None = None

    def choose(self, tensor: np.ndarray, training: bool) -> EngineChoice | None:
        """The router's engine for this batch, or ``None`` (then say why, once)."""
        reason = self._compile()
        if reason is None:
            tensor = np.asarray(tensor)
            choice = choose_engine(self.router, self._sample(tensor), len(tensor), training)
            if isinstance(choice, EngineChoice):
                self.path = COMPILED if choice.note is None else f"{COMPILED} ({choice.note})"
                return choice
            reason = choice
        self.path = f"tapes: {reason}"
        if reason not in self._said:
            self._said.add(reason)
            logger.warning("circuit-input layer: running tapes through the router: %s", reason)
        return None

    def _compile(self) -> str | None:
        if self._affine is None:
            try:
                self._affine = affine_model(self.model, self.measurements, self.num_wires)
            except NotCompilable as err:
                self._affine = err
        if isinstance(self._affine, NotCompilable):
            return f"the model circuit cannot be compiled: {self._affine}"
        return None

    def _sample(self, tensor: np.ndarray) -> QuantumScript:
        """The batch as the router should see it: one sample's full circuit broadcast
        over the batch (one engine call runs it), built once per batch size."""
        batch = len(tensor)
        if batch not in self._representatives:
            affine = self._affine
            assert isinstance(affine, AffineModel)
            (data,) = decode_circuits(tensor[:1])
            tape = QuantumScript(data.operations + affine.tape.operations, affine.tape.measurements)
            first = len(data.get_parameters(trainable_only=False))
            moving = [first + int(j) for j in np.flatnonzero(np.any(affine.jacobian != 0, axis=1))]
            params = tape.get_parameters(trainable_only=False)
            if params and batch > 1:
                params[0] = np.full(batch, params[0])
                tape = tape.bind_new_parameters(params, list(range(len(params))))
            tape.trainable_params = moving
            self._representatives[batch] = tape
        return self._representatives[batch]

    def program(self, choice: EngineChoice) -> CircuitInputProgram:
        """The compiled program on the chosen backend (its kernel, in its precision)."""
        if choice.backend not in self._programs:
            affine = self._affine
            assert isinstance(affine, AffineModel)
            engine = self.router.compiled.engine(choice.spec, self.num_wires)
            self._programs[choice.backend] = CircuitInputProgram(affine, self.num_wires, engine)
        return self._programs[choice.backend]

    def __call__(self, choice: EngineChoice, tensor: np.ndarray, values: Any):
        """Outputs ``(B, n_outputs)``, differentiable in ``values`` under autograd."""
        if traced(values):
            return _run(self, choice, tensor, values)
        return self.forward(choice, tensor, values, keep=False)

    def forward(self, choice: EngineChoice, tensor, values, keep: bool = True) -> np.ndarray:
        """Run the batch; with ``keep``, hold its final states for :meth:`take`.

        When the router has callbacks they see every sample's circuit, its result and
        its final state; a call with no VJP after it (``keep=False``) is first looked
        up in the router's result cache, sample by sample, and only the misses run.
        """
        start = time.perf_counter()
        values = np.asarray(values, dtype=np.float64)
        tapes = self.sample_tapes(tensor, values) if self.router.callbacks else None
        hits = self._cached(tapes, choice.backend) if tapes is not None and not keep else {}
        todo = np.array([i for i in range(len(tensor)) if i not in hits], dtype=np.int64)
        run = None
        if todo.size:
            if hits:  # run only the misses
                tensor = np.asarray(tensor)[todo]
                values = values[todo] if values.ndim == 2 else values
            try:
                run = self.program(choice).forward(tensor, values)
            except Exception as err:
                if not is_backend_fault(err):
                    raise
                raise EngineFailed(self.failed(choice, Task.EXECUTE, err)) from err
        if hits:
            outputs = self._merged(run, hits, todo)
        else:
            assert run is not None  # no hits: every sample ran
            outputs = run.outputs
        results: list = []
        states: list | None = None
        if tapes is not None:
            states = [None] * len(tapes)  # a cached sample's state: the recorder simulates
            if run is not None:
                for k, i in enumerate(todo.tolist()):
                    states[i] = run.states[k : k + 1]
            results = [_sample_result(row) for row in outputs]
        seconds = time.perf_counter() - start
        self.router.record_run(
            compiled_run(
                choice, Task.EXECUTE, seconds, results, tapes, states, len(hits), PATH_NOTE
            )
        )
        if keep:
            self._kept.last = (outputs, run, tapes)
        return outputs

    def _cached(self, tapes: list[QuantumScript], backend: str) -> dict[int, np.ndarray]:
        """The outputs a result cache holds, per sample it holds them for."""
        hits = {}
        for i, tape in enumerate(tapes):
            hit = self.router.cached_result(tape, backend)
            if hit is not None:
                hits[i] = np.reshape(np.asarray(hit, dtype=np.float64), -1)
        return hits

    def _merged(self, run: ForwardRun | None, hits: dict, todo) -> np.ndarray:
        """The batch's outputs from the samples that ran and those a cache answered."""
        outputs = np.empty((len(todo) + len(hits), len(self.measurements)))
        if run is not None:
            outputs[todo] = run.outputs
        for i, row in hits.items():
            outputs[i] = row
        return outputs

    def sample_tapes(self, tensor, values: np.ndarray) -> list[QuantumScript]:
        """Each sample's circuit, its data circuit then the model with its values (the
        circuits the tape path runs): what the router's callbacks and cache see."""
        affine = self._affine
        assert isinstance(affine, AffineModel)
        columns = values.T if values.ndim == 2 else values[:, None]
        angles = affine.offset[:, None] + affine.jacobian @ columns  # (angles, B or 1)
        positions = list(range(angles.shape[0]))
        models = [
            affine.tape.bind_new_parameters(list(angles[:, k]), positions)
            for k in range(angles.shape[1])
        ]
        return [
            QuantumScript(
                data.operations + models[min(i, len(models) - 1)].operations,
                affine.tape.measurements,
            )
            for i, data in enumerate(decode_circuits(np.asarray(tensor)))
        ]

    def failed(self, choice: EngineChoice, task: Task, err: BaseException) -> EngineFailure:
        """Note that the engine failed (the path, and one warning per backend and
        error type); the failure, for the tape path's report."""
        failure = engine_failure(choice.backend, task, err)
        self.path = f"tapes: {failure.reason}"
        if failure.kind not in self._said:
            self._said.add(failure.kind)
            warnings.warn(
                f"circuit-input layer: {failure.reason}. Values and gradients are the "
                "same, only slower.",
                CompiledPathWarning,
                stacklevel=2,
            )
        return failure

    def vjp(self, choice: EngineChoice, tensor, values, kept, cotangent) -> np.ndarray:
        """The symbol values' gradient after the forward pass ``kept`` (``None``: run
        it again); through the tapes if the engine fails."""
        try:
            if kept is None or kept[0] is None:  # not the forward pass just made
                values = np.asarray(values, dtype=np.float64)
                tapes = self.sample_tapes(tensor, values) if self.router.callbacks else None
                kept = (self.program(choice).forward(tensor, values), tapes)
            run, tapes = kept
            return self.backward(choice, run, cotangent, tapes)
        except Exception as err:
            if not is_backend_fault(err) or self.tapes is None:
                raise
            failure = self.failed(choice, Task.VJP, err)
        tape_path = self.tapes
        with after_failure(failure.failure):
            vjp_of, _ = make_vjp(lambda v: tape_path(tensor, v))(np.asarray(values, float))
            return vjp_of(cotangent)

    def take(self, outputs: np.ndarray) -> tuple[ForwardRun, list | None] | None:
        """The forward run that produced ``outputs`` (for its VJP) and its samples'
        circuits (when there are callbacks), let go of here."""
        last = getattr(self._kept, "last", None)
        self._kept.last = None
        return (last[1], last[2]) if last is not None and last[0] is outputs else None

    def backward(
        self, choice: EngineChoice, run: ForwardRun, cotangent, tapes: list | None = None
    ) -> np.ndarray:
        """The symbol values' gradient: ``(n,)`` shared (PQC), ``(B, n)`` per sample."""
        start = time.perf_counter()
        per_sample = self.program(choice).vjp(run, cotangent)  # (B, n)
        # for callbacks: each sample's gradient with respect to the symbol values
        results = list(per_sample) if tapes is not None else []
        seconds = time.perf_counter() - start
        self.router.record_run(
            compiled_run(choice, Task.VJP, seconds, results, tapes, note=PATH_NOTE)
        )
        return per_sample if run.per_sample else per_sample.sum(axis=0)


def _sample_result(row: np.ndarray):
    """One sample's outputs as its tape's result: a number, or one per measurement."""
    return float(row[0]) if len(row) == 1 else tuple(float(v) for v in row)


@primitive
def _run(runner: CompiledInputs, choice: EngineChoice, tensor, values):
    return runner.forward(choice, tensor, values)


def _run_vjp(ans, runner: CompiledInputs, choice: EngineChoice, tensor, values):
    kept = runner.take(ans)
    return lambda g: runner.vjp(choice, tensor, values, kept, g)


defvjp(_run, _run_vjp, argnums=[3])


def traced(*arrays) -> bool:
    """Whether autograd traces any of ``arrays`` (a VJP may follow)."""
    return any(isinstance(a, Box) for a in arrays)


def flat_values(arrays: Sequence) -> Any:
    """Symbol arrays (PQC's weights) as one flat vector, differentiably."""
    return anp.concatenate([anp.reshape(a, (-1,)) for a in arrays])


#: Differentiation methods the compiled path honours (it uses the adjoint method).
ADJOINT_METHODS = frozenset({"best", "adjoint", "device"})


def compiled_for(
    device, model: ParametrizedCircuit, measurements, diff_method: str
) -> CompiledInputs | None:
    """The compiled path for a router on wires ``0 .. n-1`` with adjoint derivatives;
    ``None`` for other devices or differentiation methods."""
    if not isinstance(device, RouterDevice) or diff_method not in ADJOINT_METHODS:
        return None
    wires = list(device.wires) if device.wires is not None else list(model.wires)
    if wires != list(range(len(wires))):
        return None
    return CompiledInputs(model, measurements, device, len(wires))
