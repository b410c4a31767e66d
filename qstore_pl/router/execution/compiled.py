"""The router's door for compiled layers: route, run a value program, account for it.

A compiled layer (:mod:`qstore_pl.layers.compiled`) records its circuit once per
structure and calls :meth:`CompiledDoor.forward` / :meth:`CompiledDoor.vjp` with plain
arrays. The router still decides: the group is described and routed exactly as the
QNode path's tapes would be (same policy, spending conditions, calibrated time models
and decision cache), and the run is logged, tracked and shown to callbacks as a
routed run whose path is ``"compiled"`` (:meth:`RouterDevice.route_group
<qstore_pl.router.device.RouterDevice.route_group>`, :meth:`~qstore_pl.router.device.
RouterDevice.record_run`). A call with no VJP after it is first looked up in the
router's result cache, if one is attached (:meth:`~qstore_pl.router.device.RouterDevice.
cached_result`). Only ``qstore.batched`` backends run value programs; when the router
picks another backend, the door answers with a :class:`Refusal` and the layer takes
the QNode path. When the engine fails on a batch (a backend fault, as
:func:`~qstore_pl.router.execution.faults.is_backend_fault` classifies the router's
own), forward or VJP, the door answers with an :class:`EngineFailure`: the layer runs
the batch again through the QNode path, which routes and falls back as usual, and
the router's next job reports the failure first (:func:`~qstore_pl.router.execution.
faults.after_failure`). Input errors (non-finite parameters, wrong shapes) raise.
A router whose groups go to a Dask cluster runs compiled batches in this process,
and says why (:data:`IN_THIS_PROCESS`, in the routing report and
``explain``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pennylane.devices.preprocess import validate_device_wires
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.devices.batched.binding import ValueProgram
from qstore_pl.devices.batched.program import BoundProgram
from qstore_pl.devices.grouping import TapeGroup, structure_key
from qstore_pl.router.execution.executors import SerialExecutor
from qstore_pl.router.execution.faults import is_backend_fault
from qstore_pl.router.execution.task import Task
from qstore_pl.router.preprocessing.pipeline import map_to_backend_wires
from qstore_pl.router.registry.own import build_device
from qstore_pl.router.run_record import RunRecord
from qstore_pl.support.bounded_cache import BoundedCache

if TYPE_CHECKING:
    from qstore_pl.router.device import RouterDevice
    from qstore_pl.router.routing.policy import RoutingDecision
    from qstore_pl.router.routing.spec import BackendSpec

#: The PennyLane device whose engine runs compiled layers and circuit-input programs.
ENGINE = "qstore.batched"


@dataclass(frozen=True)
class Refusal:
    """Why a call cannot take the compiled path (the layer then takes the QNode path)."""

    reason: str

    @property
    def kind(self) -> str:
        """What a layer warns about once: the reason itself."""
        return self.reason


@dataclass(frozen=True)
class EngineFailure(Refusal):
    """The engine failed on a compiled batch: the batch runs again through the QNode
    path (see :func:`engine_failure`).

    Attributes
    ----------
    failure : str
        ``"backend: compiled path (task): Error: message"``, as the router lists the
        backends it fell back from; the router's next job reports it.
    backend, error : str
        The backend that failed and the type of its error.
    """

    failure: str = ""
    backend: str = ""
    error: str = ""

    @property
    def kind(self) -> str:
        """Warned about once per backend and error type, whatever the message."""
        return f"{self.backend} failed with {self.error}"


def engine_failure(backend: str, task: Task, err: BaseException) -> EngineFailure:
    """What a compiled path reports when ``backend``'s engine raised ``err`` (a backend
    fault) during ``task``."""
    cause = f"{type(err).__name__}: {err}"
    return EngineFailure(
        f"{backend} failed on the compiled path ({task.value}: {cause}); the batch ran "
        "again through the QNode path",
        f"{backend}: compiled path ({task.value}): {cause}",
        backend,
        type(err).__name__,
    )


@dataclass
class CompiledCircuit:
    """One recorded structure of a layer's circuit, ready to bind.

    Attributes
    ----------
    label : str
        The circuit function's name, for logs and warnings.
    program : ValueProgram
        The value program.
    trainable : tuple[int, ...]
        Parameters of the representative tape that get gradients (for routing).
    """

    label: str
    program: ValueProgram
    trainable: tuple[int, ...]
    _groups: BoundedCache[int, TapeGroup] = field(default_factory=lambda: BoundedCache(8))
    _executed: QuantumScript | None = None

    @property
    def shots(self) -> int | None:
        """The shots each circuit is sampled with (the QNode's), ``None`` for exact
        values."""
        return self.program.tape.shots.total_shots

    @property
    def executed(self) -> QuantumScript:
        """The recorded circuit as the router's QNode path executes it (its device
        tape; built once): what callbacks and the result cache see of a compiled call,
        so that both paths key one execution alike (:func:`executed_circuit`)."""
        if self._executed is None:
            self._executed = executed_circuit(self.program)
        return self._executed

    def bound_tape(self, bound: BoundProgram) -> QuantumScript:
        """:attr:`executed` with this call's parameters (for callbacks and the cache)."""
        params = [data[0] for data in bound.parameters[0].data]
        tape = self.executed.bind_new_parameters(params, list(range(len(params))))
        tape.trainable_params = []
        return tape

    @property
    def states_match(self) -> bool:
        """Whether the engine's states are those of :attr:`executed` (the program
        spans every device wire; the executed circuit only the wires it uses)."""
        return len(self.executed.wires) == self.program.num_wires

    def group(self, batch: int) -> TapeGroup:
        """A tape group the router can describe for a batch of ``batch`` circuits.

        Built once per batch size: the representative tape with broadcast angles.
        """
        return self._groups.get_or_build(batch, lambda: self._build_group(batch))

    def _build_group(self, batch: int) -> TapeGroup:
        # the tape the QNode path routes: no width-fixing identity (IonQ has none)
        tape = self.executed
        program = self.program
        per_sample = program.per_sample_slots()
        params = [
            np.full(batch, float(np.real(data[0]))) if j in per_sample else data[0]
            for j, data in enumerate(program.constants)
        ]
        broadcast = tape.bind_new_parameters(params, list(range(len(params))))
        broadcast.trainable_params = list(self.trainable)
        return TapeGroup([0], [broadcast], structure_key(broadcast))


@dataclass
class CompiledForward:
    """A forward pass kept for the VJP that may follow it (``states`` is ``None`` when
    a result cache answered: no VJP follows an inference call)."""

    circuit: CompiledCircuit
    choice: EngineChoice
    device: Any
    bound: BoundProgram
    states: np.ndarray | None
    values: np.ndarray

    @property
    def path(self) -> str:
        """The path this call took, as ``explain`` says it."""
        note = self.choice.note
        return "compiled" if note is None else f"compiled ({note})"


#: Where a compiled batch runs when the router's groups go to a Dask cluster, and why.
IN_THIS_PROCESS = (
    "in this process, not on the Dask cluster: a compiled batch is one engine call whose "
    "VJP needs the forward states it keeps; fanned out, each worker would rebuild the "
    "program and the states would travel"
)


@dataclass(frozen=True)
class EngineChoice:
    """The router's decision for a compiled batch, when its batched engine runs it.

    Attributes
    ----------
    decision : RoutingDecision
        The routing decision.
    spec : BackendSpec
        The chosen ``qstore.batched`` backend.
    group : TapeGroup
        The batch as it was routed.
    note : str or None
        How the run differs from the router's own runs of the group (said in the
        routing report): where it runs when the router's executor is remote.
    """

    decision: RoutingDecision
    spec: BackendSpec
    group: TapeGroup
    note: str | None = None

    @property
    def backend(self) -> str:
        """The chosen backend's name."""
        return self.decision.backend

    @property
    def c_dtype(self) -> np.dtype:
        """The precision of the chosen backend's states."""
        return np.dtype(self.spec.device_kwargs.get("c_dtype", np.complex128))


def engine_decision(router: RouterDevice, group: TapeGroup, training: bool) -> EngineChoice | str:
    """Route ``group`` as a forward pass (a VJP follows when ``training``), as the router
    routes its own: the choice when it chose the batched engine that the compiled doors
    drive, else why not (a backend that runs tapes only)."""
    decision, spec = router.route_group(group, Task.EXECUTE, "vjp" if training else None)
    if spec.device_name != ENGINE or spec.metered or spec.noise_model is not None:
        return f"the router chose {decision.backend!r}, which runs tapes only"
    note = None if isinstance(router.executor, SerialExecutor) else IN_THIS_PROCESS
    return EngineChoice(decision, spec, group, note)


def compiled_run(
    choice: EngineChoice,
    task: Task,
    seconds: float,
    results: Sequence[Any] = (),
    tapes: Sequence[QuantumScript] | None = None,
    states: Sequence[Any] | None = None,
    cached: int = 0,
    note: str | None = None,
    method: str = "adjoint",
) -> RunRecord:
    """What the router records of a compiled batch (see :class:`RunRecord`):
    ``tapes``, ``results`` and ``states`` are for callbacks, given when there are
    some; ``note`` says how the batch ran, besides where (:attr:`EngineChoice.note`);
    ``method``: how a derivative task differentiated."""
    notes = "; ".join(text for text in (note, choice.note) if text)
    return RunRecord(
        choice.group,
        choice.decision,
        task,
        choice.backend,
        results,
        seconds,
        tapes=tapes,
        states=states,
        method=method if task.derivative else None,
        cached=cached,
        path="compiled",
        note=notes or None,
    )


class CompiledDoor:
    """Routes and runs compiled layers' calls on one router.

    Parameters
    ----------
    router : RouterDevice
        The router whose policy, backends, log, tracker and callbacks apply.
    """

    def __init__(self, router: RouterDevice):
        self._router = router
        self._devices: dict[tuple[str, int], Any] = {}
        #: circuit function -> the path its calls took last, and why
        self._paths: dict[Hashable, str] = {}

    # ------------------------------------------------------------- transparency
    def note_path(self, func: Callable, path: str) -> None:
        """Remember which path the calls of the circuit ``func`` take (for ``explain``)."""
        self._paths[func] = path

    def path_of(self, func: Callable) -> str | None:
        """The path the calls of the circuit ``func`` took, if a layer ran it here."""
        return self._paths.get(func)

    # ---------------------------------------------------------------- execution
    def forward(
        self, circuit: CompiledCircuit, arrays: Sequence[np.ndarray], keep_vjp: bool
    ) -> CompiledForward | Refusal:
        """Route and run one batch forward; a :class:`Refusal` if this path cannot.

        A call after which no VJP follows is first looked up in the router's result
        cache, if it has one, as the router's own executions are.
        """
        router = self._router
        program = circuit.program
        batch = int(np.shape(arrays[program.per_sample.index(True)])[0])
        choice = engine_decision(router, circuit.group(batch), keep_vjp)
        if isinstance(choice, str):
            return Refusal(choice)
        start = time.perf_counter()
        bound = program.bind(arrays)
        tape = circuit.bound_tape(bound) if router.callbacks else None
        hit = None if tape is None or keep_vjp else router.cached_result(tape, choice.backend)
        if hit is not None:
            values = list(hit) if isinstance(hit, tuple) else [hit]
            run = CompiledForward(
                circuit, choice, None, bound, None, program.outputs(values, batch)
            )
            self._record(run, Task.EXECUTE, start, [hit], tape, cached=batch)
            return run
        try:
            device = self.engine(choice.spec, program.num_wires)
            psi, values = program.forward(device, bound, circuit.shots)
        except Exception as err:
            if not is_backend_fault(err):
                raise
            return engine_failure(choice.backend, Task.EXECUTE, err)
        run = CompiledForward(circuit, choice, device, bound, psi, program.outputs(values, batch))
        self._record(run, Task.EXECUTE, start, _per_tape(values), tape)
        return run

    def vjp(
        self,
        run: CompiledForward,
        cotangent: np.ndarray,
        arrays: Sequence[np.ndarray],
        wanted: Sequence[int],
    ) -> list[np.ndarray | None] | EngineFailure:
        """Gradients of the arguments ``wanted`` after ``run``: one adjoint sweep; an
        :class:`EngineFailure` if the engine failed (then run the QNode path)."""
        if run.states is None:
            raise ValueError("this forward pass was answered from a cache; no VJP follows it")
        start = time.perf_counter()
        program, shots = run.circuit.program, run.circuit.shots
        try:
            if shots:
                grads = program.shift_vjp(run.device, run.bound, cotangent, arrays, wanted, shots)
            else:
                grads = program.vjp(run.device, run.bound, run.states, cotangent, arrays, wanted)
        except Exception as err:
            if not is_backend_fault(err):
                raise
            return engine_failure(run.choice.backend, Task.VJP, err)
        tape = run.circuit.bound_tape(run.bound) if self._router.callbacks else None
        # with shots, every shifted circuit ran and counts, as the QNode path's tapes do
        circuits = run.bound.batch * program.shift_count(wanted) if shots else None
        grads_found = [tuple(g for g in grads if g is not None)]
        self._record(run, Task.VJP, start, grads_found, tape, circuits=circuits)
        return grads

    def engine(self, spec: BackendSpec, num_wires: int):
        """The chosen backend's device on ``num_wires`` wires, built as the router's own
        backends are (:func:`~qstore_pl.router.registry.own.build_device`), once."""
        key = (spec.name, num_wires)
        if key not in self._devices:
            # seeded as the router seeds its own backend: a seeded router samples alike
            seed = self._router.backend_seed(spec.name, num_wires)
            kwargs = {"seed": seed, **spec.device_kwargs}
            self._devices[key] = build_device(spec.device_name, num_wires, **kwargs)
        return self._devices[key]

    def _record(
        self,
        run: CompiledForward,
        task: Task,
        start: float,
        results: list,
        tape: QuantumScript | None,
        cached: int = 0,
        circuits: int | None = None,
    ) -> None:
        """Report the run as the router reports its own; callbacks see the circuit
        with its real parameters (``tape``, built only when there are callbacks).
        ``circuits``: how many ran, when not the batch (shifted circuits)."""
        states = None  # without them a recorder simulates the circuit itself
        if task is Task.EXECUTE and run.states is not None and run.circuit.states_match:
            states = [run.states]
        tapes = None if tape is None else [tape]
        seconds = time.perf_counter() - start
        method = "parameter-shift" if run.circuit.shots else "adjoint"
        choice = run.choice
        if circuits is not None:
            choice = replace(choice, group=run.circuit.group(circuits))
        self._router.record_run(
            compiled_run(choice, task, seconds, results, tapes, states, cached, method=method)
        )


def _per_tape(values: list[np.ndarray]) -> list:
    """The batch's results as the one broadcast tape's result (PennyLane's shape)."""
    return [values[0] if len(values) == 1 else tuple(values)]


def executed_circuit(program: ValueProgram) -> QuantumScript:
    """The circuit of ``program`` as the router's QNode path hands it to a backend.

    The recording prepends an identity on every wire to fix the program's width; the
    router's preprocessing instead gives a measurement of no wires the device's wires
    (``validate_device_wires``) and moves the circuit onto the wires it uses
    (:func:`~qstore_pl.router.preprocessing.pipeline.map_to_backend_wires`). The same
    steps here make a compiled call's circuit, and so its result-cache key, that of
    the QNode path's tape for the same call.
    """
    tape = program.tape
    wires = Wires(range(program.num_wires))
    bare = QuantumScript(tape.operations[1:], tape.measurements, shots=tape.shots)
    (bare,), _ = validate_device_wires(bare, wires)
    (mapped,), _ = map_to_backend_wires(bare, wires)
    return mapped
