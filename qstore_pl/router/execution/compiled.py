"""The router's door for compiled layers: route, run a value program, account for it.

A compiled layer (:mod:`qstore_pl.layers.compiled`) records its circuit once per
structure and calls :meth:`CompiledDoor.forward` / :meth:`CompiledDoor.vjp` with plain
arrays. The router still decides: the group is described and routed exactly as the
QNode path's tapes would be (same policy, spending conditions, calibrated time models
and decision cache), and the run is logged, tracked and shown to callbacks as a
routed run whose path is ``"compiled"``. Only ``qstore.batched`` backends run value
programs; when the router picks another backend (or the chosen one fails), the door
answers with a :class:`Refusal` and the layer takes the QNode path, which runs the
router's ordinary fallback chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.devices.batched.binding import ValueProgram
from qstore_pl.devices.batched.program import BoundProgram
from qstore_pl.devices.grouping import TapeGroup, structure_key
from qstore_pl.router.execution.executors import SerialExecutor
from qstore_pl.router.execution.faults import is_backend_fault
from qstore_pl.router.execution.task import Task
from qstore_pl.router.purpose import current_purpose
from qstore_pl.support.bounded_cache import BoundedCache

if TYPE_CHECKING:
    from qstore_pl.router.device import RouterDevice

#: The PennyLane device whose engine runs compiled layers and circuit-input programs.
ENGINE = "qstore.batched"


@dataclass(frozen=True)
class Refusal:
    """Why a call cannot take the compiled path (the layer then takes the QNode path)."""

    reason: str


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

    def group(self, batch: int) -> TapeGroup:
        """A tape group the router can describe for a batch of ``batch`` circuits.

        Built once per batch size: the representative tape with broadcast angles.
        """
        return self._groups.get_or_build(batch, lambda: self._build_group(batch))

    def _build_group(self, batch: int) -> TapeGroup:
        tape = self.program.tape
        program = self.program
        per_sample = {
            j for j, s in enumerate(program.sources) if s is not None and program.per_sample[s.arg]
        }
        params = [
            np.full(batch, float(np.real(data[0]))) if j in per_sample else data[0]
            for j, data in enumerate(program.constants)
        ]
        broadcast = tape.bind_new_parameters(params, list(range(len(params))))
        broadcast.trainable_params = list(self.trainable)
        return TapeGroup([0], [broadcast], structure_key(broadcast))


@dataclass
class CompiledForward:
    """A forward pass kept for the VJP that may follow it."""

    circuit: CompiledCircuit
    backend: str
    device: Any
    bound: BoundProgram
    states: np.ndarray
    values: np.ndarray
    group: TapeGroup
    decision: Any


def engine_decision(router: RouterDevice, group: TapeGroup, training: bool) -> tuple | str:
    """Route ``group`` as a forward pass (a VJP follows when ``training``), as the router
    routes its own: ``(decision, spec)`` when it chose the batched engine that the
    compiled doors drive, else why not (a backend that runs tapes only)."""
    decision = router._decide(
        group,
        Task.EXECUTE,
        current_purpose(),
        "vjp" if training else None,
        backprop=False,
        differenced=False,
    )
    spec = router._specs[decision.backend]
    if spec.device_name != ENGINE or spec.metered or spec.noise_model is not None:
        return f"the router chose {decision.backend!r}, which runs tapes only"
    return decision, spec


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
        """Route and run one batch forward; a :class:`Refusal` if this path cannot."""
        router = self._router
        program = circuit.program
        batch = int(np.shape(arrays[program.per_sample.index(True)])[0])
        group = circuit.group(batch)
        choice = engine_decision(router, group, keep_vjp)
        if isinstance(choice, str):
            return Refusal(choice)
        decision, spec = choice
        name = decision.backend
        if not isinstance(router.executor, SerialExecutor):
            return Refusal("the router runs groups on a remote executor")
        start = time.perf_counter()
        try:
            device = self._device(spec, program.num_wires)
            bound = program.bind(arrays)
            psi, values = program.forward(device, bound)
        except Exception as err:
            if not is_backend_fault(err):
                raise
            return Refusal(f"{name} failed ({type(err).__name__}: {err})")
        seconds = time.perf_counter() - start
        out = program.outputs(values, batch)
        run = CompiledForward(circuit, name, device, bound, psi, out, group, decision)
        self._record(run, Task.EXECUTE, seconds, lambda: _per_tape(values))
        return run

    def vjp(
        self,
        run: CompiledForward,
        cotangent: np.ndarray,
        arrays: Sequence[np.ndarray],
        wanted: Sequence[int],
    ) -> list[np.ndarray | None]:
        """Gradients of the arguments ``wanted`` after ``run``: one adjoint sweep."""
        start = time.perf_counter()
        grads = run.circuit.program.vjp(
            run.device, run.bound, run.states, cotangent, arrays, wanted
        )
        seconds = time.perf_counter() - start
        self._record(run, Task.VJP, seconds, lambda: [tuple(g for g in grads if g is not None)])
        return grads

    def _device(self, spec, num_wires: int):
        key = (spec.name, num_wires)
        if key not in self._devices:
            self._devices[key] = qml.device(ENGINE, wires=num_wires, **dict(spec.device_kwargs))
        return self._devices[key]

    def _record(self, run: CompiledForward, task: Task, seconds: float, output) -> None:
        """Log, track and tell callbacks, as the router does for its own runs."""
        router = self._router
        group, states = run.group, None
        if router.callbacks:  # callbacks see the circuits with their real parameters
            group = TapeGroup([0], [_bound_tape(run)], run.group.key)
            states = [run.states] if task is Task.EXECUTE else None
        router.record_compiled(
            group,
            run.decision,
            task,
            run.backend,
            "adjoint" if task.derivative else None,
            output(),
            seconds,
            states,
        )


def _per_tape(values: list[np.ndarray]) -> list:
    """The batch's results as the one broadcast tape's result (PennyLane's shape)."""
    return [values[0] if len(values) == 1 else tuple(values)]


def _bound_tape(run: CompiledForward) -> QuantumScript:
    """The representative tape with this call's parameters (only for callbacks)."""
    tape = run.circuit.program.tape
    table = run.bound.parameters[0]
    params = [data[0] for data in table.data]
    bound = tape.bind_new_parameters(params, list(range(len(params))))
    bound.trainable_params = []
    return bound
