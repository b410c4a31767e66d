"""The ``qstore.router`` device: one PennyLane device that routes every group of
circuits to the backend that suits it best.

Data path::

    execute / derivatives
      → check parameters are finite
      → group tapes by structure (grouping.py)
      → describe each group as plain workload features (router/routing/workload.py)
      → route: eligibility + policy (router/routing/policy.py)
      → run on the chosen backend through the executor seam, falling back down the
        ranking when a backend fails (backend.py, executors.py)
      → log, track, call callbacks (router/report.py, callbacks.py)
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import numpy as np
import pennylane as qml
from pennylane.devices import Device, ExecutionConfig, MCMConfig
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.exceptions import DeviceError
from pennylane.math import Interface
from pennylane.tape import QuantumScript, QuantumScriptBatch
from pennylane.transforms.core import CompilePipeline
from pennylane.typing import ResultBatch
from pennylane.wires import WiresLike
from pennylane.workflow import QNode

from qstore_pl.callbacks import DeviceCallback, ExecutionRecord
from qstore_pl.devices.adjoint_support import adjoint_support
from qstore_pl.devices.execution_config import (
    DEVICE_GRADIENTS,
    device_gradient_settings,
    interface_name,
    needs_jacobians,
    reject_device_options,
)
from qstore_pl.devices.grouping import (
    TapeGroup,
    broadcast_size,
    group_by_structure,
    structure_key,
)
from qstore_pl.devices.preprocess_cache import skip_known_structures
from qstore_pl.devices.wire_count import check_wire_count
from qstore_pl.exceptions import (
    BackendExecutionError,
    BudgetExceeded,
    ConfigError,
    InvalidParameterError,
    ParameterTypeError,
    UnsupportedCircuitError,
)
from qstore_pl.router.calibration.measure import apply_calibration
from qstore_pl.router.config import RouterConfig, load_config
from qstore_pl.router.execution.compiled import CompiledDoor
from qstore_pl.router.execution.executors import BackendPool, GroupExecutor, GroupWork
from qstore_pl.router.execution.factory import make_executor
from qstore_pl.router.execution.faults import is_backend_fault, take_carried_failures
from qstore_pl.router.execution.task import Task
from qstore_pl.router.explain import RoutingExplanation
from qstore_pl.router.memory import StructureMemory
from qstore_pl.router.money.estimate import CostEstimate
from qstore_pl.router.money.report import CostReport
from qstore_pl.router.money.spending import Spending, apply_spending_settings, job_tags
from qstore_pl.router.preprocessing.differentiation import (
    DIFFERENCED_OPTION,
    backprop_fits,
    differences_values,
    falls_back_to_differences,
    framework_interface,
    needs_backprop,
    reject_complex_traced,
    reject_complex_trainable,
    traced,
    warn_differentiable_backward,
)
from qstore_pl.router.preprocessing.jax_batching import maps_eagerly
from qstore_pl.router.preprocessing.pipeline import build_pipeline
from qstore_pl.router.purpose import current_purpose
from qstore_pl.router.registry.builtin import resolve_backends
from qstore_pl.router.report import RoutedRun, RoutingLog, RoutingReport
from qstore_pl.router.routing.policy import RoutingContext, RoutingDecision, get_policy, route
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.router.routing.workload import describe
from qstore_pl.router.run_record import RunRecord
from qstore_pl.support.limits import excerpt

logger = logging.getLogger(__name__)

#: What ``estimate_cost`` and ``explain`` take: a QNode (called with the arguments that
#: follow to build its tapes, nothing run) or tapes.
CircuitLike: TypeAlias = QNode | QuantumScript | Sequence[QuantumScript]

_MCM_METHODS = {"deferred", "one-shot"}


@dataclass
class _Job:
    """One group to run: the unit the executor seam moves around."""

    group: TapeGroup
    decision: RoutingDecision
    task: Task
    cotangents: list | None
    mcm_config: MCMConfig
    purpose: str
    interface: str | None = None  # set when the ML framework backpropagates through it
    failures: tuple[str, ...] = ()  # of an attempt before this job (a compiled path)


@simulator_tracking
@single_tape_support
class RouterDevice(Device):
    """A PennyLane device that routes circuits to the best backend for them.

    With no configuration it uses every local simulator that is installed and usable
    (lightning.qubit, qstore.qsim, default.qubit; lightning.gpu and lightning.kokkos
    when present) and picks, for each group of circuits that share a structure, the one
    with the lowest estimated time.

    Parameters
    ----------
    wires : int or Iterable, optional
        Number of wires or wire labels. ``None`` lets each circuit use its own wires.
    shots : int, optional
        Default shots (deprecated in PennyLane; prefer ``qml.set_shots`` on the QNode).
    router_config : dict or str or PathLike, optional
        Router configuration, or a path to a YAML/TOML file with it (the keyword to
        use through ``qml.device``, which reserves ``config`` for PennyLane's own
        configuration). Keys:
        ``backends`` (``"auto"`` or a list of backend names or
        ``{"name", "type", "options"}`` dicts), ``routing_strategy``
        (``"performance"``), ``precision`` (``"single"`` allows complex64 backends,
        ``"double"`` requires complex128), ``fallback`` (bool) and ``executor``.
        Spending: ``budget`` and ``max_cost_per_batch`` (USD), ``on_budget_exceeded``
        (``"raise"`` or ``"fallback"``), ``ledger`` (path), ``fallback_chain``; per
        backend ``use_for``, ``pricing``, ``target`` and ``max_queue_seconds`` (IonQ
        backends: ``"type": "ionq"``), and ``noise_model`` (``"aria-1"``, ...) on a
        ``default.mixed`` backend to rehearse a hardware run. ``routing_strategy`` may also be
        ``"cost_optimized"`` or ``"precision"``.
    config : dict or str or PathLike, optional
        The same, when the class is constructed directly (``RouterDevice(config=...)``).
    callbacks : Sequence[DeviceCallback], optional
        Called with an :class:`~qstore_pl.callbacks.ExecutionRecord` per circuit run;
        :meth:`add_callback` and :meth:`remove_callback` change them later.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or JAX PRNG key, optional
        Seed for sampling on the backends.
    **config_overrides
        Top-level config keys given directly, e.g. ``precision="double"``.

    Notes
    -----
    Derivatives: with ``diff_method`` ``"best"``, ``"adjoint"`` or ``"device"`` and
    analytic execution, the router computes derivatives itself with what the chosen
    backend does best (the adjoint method, or the parameter-shift rule run as one
    batch). With finite shots, PennyLane's parameter-shift rule runs through the
    router. ``diff_method="backprop"`` (and ``"best"`` with ``max_diff=2`` or
    trainable observable coefficients) runs on default.qubit, as default.qubit's own
    ``"best"`` would; finite differences and SPSA run in double precision, as does a
    direct ``dev.execute(tapes)`` without an execution config.

    Examples
    --------
    >>> dev = qml.device("qstore.router", wires=2)
    >>> @qml.qnode(dev)
    ... def circuit(x):
    ...     qml.RX(x, 0)
    ...     qml.CNOT([0, 1])
    ...     return qml.expval(qml.Z(1))
    >>> print(dev.explain(circuit, 0.3))  # every candidate, its estimate and the choice
    """

    name = "qstore.router"
    _device_options = ()

    def __init__(
        self,
        wires: WiresLike | int | None = None,
        shots: int | Sequence[int] | None = None,
        *,
        router_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        callbacks: Sequence[DeviceCallback] = (),
        seed: Any = None,
        **config_overrides: Any,
    ):
        check_wire_count(wires, self.name)
        if router_config is not None and config is not None:
            raise ConfigError(
                "the router config was given twice, as router_config= and config=; "
                "give it once (router_config= through qml.device)"
            )
        config = router_config if router_config is not None else config
        super().__init__(wires=wires, shots=shots)
        self.config: RouterConfig = load_config(config, **config_overrides)
        with _global_rng_kept():  # probing backends builds devices that seed from it
            specs = apply_spending_settings(resolve_backends(self.config.backends), self.config)
            local = apply_calibration([s for s in specs if not s.metered], self.config.calibration)
        calibrated = {s.name: s for s in local}
        self.backends = [calibrated.get(s.name, s) for s in specs]  # cloud ones uncalibrated
        self._spending = Spending(self.config, self.backends)
        self._specs = {spec.name: spec for spec in self.backends}
        self._policy = get_policy(self.config.routing_strategy)
        self._executor = make_executor(self.config.executor)
        # backpropagation runs here whatever the executor: the framework's tensors
        # cannot travel to another process and keep their gradients
        self._local = BackendPool()
        self._callbacks = _check_callbacks(callbacks)
        self._rng = np.random.default_rng(_entropy(seed))
        self._seeds: dict[tuple[str, int], int] = {}  # per backend and width
        self._log = RoutingLog()
        self._memory = StructureMemory()
        #: the door compiled layers call (qstore_pl.layers.compiled)
        self.compiled = CompiledDoor(self)

    @property
    def executor(self) -> GroupExecutor:
        """Where routed groups run: a :class:`~qstore_pl.router.execution.executors.
        SerialExecutor`, or a :class:`~qstore_pl.router.execution.dask.DaskExecutor`
        (``close()`` it to let go of its Dask client) as ``config["executor"]`` says."""
        return self._executor

    def __repr__(self) -> str:
        wires = len(self.wires) if self.wires is not None else None
        names = ", ".join(self._specs)
        return f"<RouterDevice wires={wires} backends=[{names}] policy={self._policy.name}>"

    # --------------------------------------------------------------- callbacks
    @property
    def callbacks(self) -> tuple[DeviceCallback, ...]:
        """The callbacks asked before and told after each circuit run, in order."""
        return self._callbacks

    def add_callback(self, callback: DeviceCallback) -> None:
        """Call ``callback`` too, from the next circuit on (after those there are).

        Circuits that other threads are running meanwhile may or may not call it.
        Add and remove callbacks from one thread at a time.

        Raises
        ------
        ConfigError
            If ``callback`` has no ``on_execution(record)`` method.
        ValueError
            If ``callback`` is attached already (it would see every circuit twice).
        """
        (callback,) = _check_callbacks((callback,))
        if any(cb is callback for cb in self._callbacks):
            raise ValueError(f"{callback!r} is attached to this device already; add it once")
        self._callbacks = (*self._callbacks, callback)

    def remove_callback(self, callback: DeviceCallback) -> None:
        """Stop calling ``callback`` from the next circuit on.

        Raises
        ------
        ValueError
            If ``callback`` is not attached (compared by identity); ``callbacks``
            lists those that are.
        """
        kept = tuple(cb for cb in self._callbacks if cb is not callback)
        if len(kept) == len(self._callbacks):
            raise ValueError(
                f"{callback!r} is not attached to this device, so it cannot be removed; "
                f"attached: {[type(cb).__name__ for cb in self._callbacks]} (see dev.callbacks)"
            )
        self._callbacks = kept

    # ------------------------------------------------------------------ config
    def setup_execution_config(
        self, config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> ExecutionConfig:
        config = config or ExecutionConfig()
        reject_device_options(config, self.name, allowed=(DIFFERENCED_OPTION,))
        updated: dict[str, Any] = {"convert_to_numpy": True}
        if (
            config.gradient_method == "best"
            and circuit is not None
            and needs_backprop(config, circuit)
            and self.supports_derivatives(config, circuit)
        ):
            config = replace(config, gradient_method="backprop")
        if config.gradient_method == "backprop":
            # as default.qubit: the framework differentiates through the simulation
            updated.update(
                gradient_method="backprop",
                convert_to_numpy=False,
                use_device_gradient=False,
                use_device_jacobian_product=False,
            )
        elif config.gradient_method in DEVICE_GRADIENTS:
            if circuit is not None:
                reject_complex_traced(circuit)
            # VJPs keep broadcast batches whole (see needs_jacobians for the exceptions).
            # JAX computes Jacobians on demand, the others with the results.
            jax = interface_name(config).startswith("jax")
            updated.update(
                device_gradient_settings(config, needs_jacobians(config), grad_on_execution=not jax)
            )
        elif config.use_device_gradient is None:
            updated["use_device_gradient"] = False
        if updated["convert_to_numpy"] and maps_eagerly(config, circuit):
            updated["interface"] = Interface.JAX_JIT  # see jax_batching
        if circuit is not None and falls_back_to_differences(config.gradient_method, circuit):
            updated["device_options"] = {**config.device_options, DIFFERENCED_OPTION: True}
        updated["mcm_config"] = self._setup_mcm_config(config.mcm_config, circuit)
        return replace(config, **updated)

    def _setup_mcm_config(self, mcm_config: MCMConfig, circuit: QuantumScript | None):
        method = mcm_config.mcm_method
        if method is None:
            method = "one-shot" if circuit is not None and circuit.shots else "deferred"
        if method not in _MCM_METHODS:
            raise DeviceError(
                f"mcm_method={method!r} is not supported by {self.name}; "
                f"use one of {sorted(_MCM_METHODS)}"
            )
        if mcm_config.postselect_mode == "fill-shots" and method != "deferred":
            raise DeviceError("postselect_mode='fill-shots' needs mcm_method='deferred'")
        return replace(mcm_config, mcm_method=method)

    def preprocess_transforms(
        self, execution_config: ExecutionConfig | None = None
    ) -> CompilePipeline:
        config = execution_config or self.setup_execution_config()
        # the pipeline depends on these settings only; building it anew on every
        # call would also throw away its per-gate-kind decisions
        key = (
            config.mcm_config.mcm_method,
            config.gradient_method,
            config.use_device_jacobian_product,
            config.interface,
        )
        capabilities = [spec.capabilities for spec in self.backends]
        return self._memory.pipelines.get_or_build(
            key, lambda: skip_known_structures(build_pipeline(config, capabilities, self.wires))
        )

    def supports_derivatives(
        self, execution_config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> bool:
        if execution_config is None:
            return True
        method = execution_config.gradient_method
        if method == "backprop" or (
            method == "best" and circuit is not None and needs_backprop(execution_config, circuit)
        ):
            # higher orders and trainable observables: backpropagation (default.qubit's
            # "best"), or else PennyLane's parameter shift through the router
            return self._backprops(method) and (circuit is None or backprop_fits(circuit))
        if method not in DEVICE_GRADIENTS:
            return False
        if not any(spec.capabilities.derivatives for spec in self.backends):
            return False
        if circuit is None:
            return True
        if circuit.shots:
            return False
        key = (structure_key(circuit), tuple(circuit.trainable_params), execution_config.interface)
        return adjoint_support(self, self._memory.supports_adjoint, key, execution_config, circuit)

    def _backprops(self, method) -> bool:
        """Whether a backend backpropagates; an explicit request without one raises."""
        if any(spec.capabilities.backprop for spec in self.backends):
            return True
        if method == "backprop":
            raise UnsupportedCircuitError(
                f"diff_method='backprop' needs a backend that computes with the ML "
                f"framework's tensors, and none of {list(self._specs)} does: add "
                "'default.qubit' to the backends, or use diff_method='adjoint' or "
                "'parameter-shift'."
            )
        return False

    def supports_vjp(
        self, execution_config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> bool:
        if execution_config is not None and execution_config.gradient_method == "backprop":
            return False
        return self.supports_derivatives(execution_config, circuit)

    # --------------------------------------------------------------- execution
    def execute(
        self, circuits: QuantumScriptBatch, execution_config: ExecutionConfig | None = None
    ) -> ResultBatch:
        return self._run(circuits, Task.EXECUTE, execution_config)

    def compute_derivatives(
        self, circuits: QuantumScriptBatch, execution_config: ExecutionConfig | None = None
    ) -> tuple:
        return self._run(circuits, Task.JACOBIAN, execution_config)

    def execute_and_compute_derivatives(
        self, circuits: QuantumScriptBatch, execution_config: ExecutionConfig | None = None
    ) -> tuple:  # (results, derivatives)
        return tuple(zip(*self._run(circuits, Task.EXECUTE_JACOBIAN, execution_config)))

    def compute_vjp(
        self,
        circuits: QuantumScriptBatch,
        cotangents: tuple,
        execution_config: ExecutionConfig | None = None,
    ) -> tuple:
        return self._run(circuits, Task.VJP, execution_config, cotangents)

    def execute_and_compute_vjp(
        self,
        circuits: QuantumScriptBatch,
        cotangents: tuple,
        execution_config: ExecutionConfig | None = None,
    ) -> tuple:  # (results, vjps)
        return tuple(zip(*self._run(circuits, Task.EXECUTE_VJP, execution_config, cotangents)))

    def _run(self, circuits, task: Task, execution_config, cotangents=None) -> tuple:
        config = execution_config or ExecutionConfig()
        interface = None  # the ML framework, when it differentiates through the execution
        if task is Task.EXECUTE and (
            config.gradient_method == "backprop" or any(traced(t) for t in circuits)
        ):
            interface = framework_interface(config, circuits)
        if task.derivative:
            warn_differentiable_backward(config)
        for tape in circuits:
            if interface is None:  # traced values cannot be read (and need not be)
                check_parameters(tape)
            if task.derivative:
                reject_complex_trainable(tape)
        needs = {"backprop": interface is not None}
        # Without an execution config the caller is running tapes itself, e.g. the
        # shifted tapes of qml.gradients.finite_diff, whose differences complex64 swamps.
        needs["differenced"] = execution_config is None or differences_values(config)
        purpose = current_purpose()  # the caller's: jobs may run in other threads
        expected = None  # the derivative this configuration asks for, if any
        if config.gradient_method == "adjoint" and config.use_device_gradient:
            expected = "vjp" if config.use_device_jacobian_product else "jacobian"
        jobs = [
            _Job(
                group=group,
                decision=self._decide(group, task, purpose, expected, **needs),
                task=task,
                cotangents=[cotangents[i] for i in group.indices] if cotangents else None,
                mcm_config=config.mcm_config,
                purpose=purpose,
                interface=interface,
            )
            for group in group_by_structure(circuits)
        ]
        carried = take_carried_failures()  # a compiled path failed before these tapes
        if carried:
            jobs[0] = replace(jobs[0], failures=carried)
        outputs = self._executor.map(self._run_job, jobs)
        results: list[Any] = [None] * len(circuits)
        for job, output in zip(jobs, outputs):
            for i, value in zip(job.group.indices, output):
                results[i] = value
        return tuple(results)

    def _decide(
        self,
        group: TapeGroup,
        task: Task,
        purpose: str | None = None,
        expected: str | None = None,
        **needs: bool,
    ) -> RoutingDecision:
        """Route a group; ``expected`` is the derivative the QNode's configuration asks
        for, assumed to follow the first forward pass of a structure with trainable
        parameters (afterwards what actually followed decides). ``needs`` are the
        ``backprop`` and ``differenced`` flags of :class:`WorkloadFeatures`."""
        derivative = task.derivative
        tapes = group.tapes
        batch = sum(broadcast_size(t) or 1 for t in tapes)
        purpose = purpose or current_purpose()
        memory = self._memory
        # a derivative finds the forward states where the forward pass ran
        warm = memory.last_forward(group.key) if derivative else None
        trainable = tuple(tapes[0].trainable_params)
        then = None
        if not derivative:  # route the forward pass for the derivative likely to follow
            then = memory.expected_derivative(group.key, expected, bool(trainable))
        if not self._spending.active:
            # without prices, outages or queues a decision depends on this key only
            flags = tuple(sorted(needs.items()))
            key = (group.key, trainable, derivative, batch, len(tapes), purpose, warm, then, flags)
            return memory.decisions.get_or_build(
                key, lambda: self._route(group, derivative, batch, purpose, warm, then, needs)
            )
        return self._route(group, derivative, batch, purpose, warm, then, needs)

    def _route(self, group, derivative, batch, purpose, warm, then, needs) -> RoutingDecision:
        tapes = group.tapes
        key = (group.key, tuple(tapes[0].trainable_params), derivative, *sorted(needs.items()))
        features = self._memory.features.get_or_build(
            key, lambda: describe(tapes, derivative, **needs)
        )
        if features.batch_size != batch or features.num_tapes != len(tapes):
            features = replace(features, batch_size=batch, num_tapes=len(tapes))
        context = RoutingContext(
            purpose=purpose,
            chain=self._spending.chain,
            warm=frozenset((warm,)) if warm else frozenset(),
            then=then,
        )
        if self._spending.active:
            unavailable, queues = self._spending.conditions()
            context = replace(
                context,
                costs=self._spending.costs(tapes, group.key),
                unavailable=unavailable,
                queue_seconds=queues,
            )
        return route(features, self.backends, self._policy, self.config.precision, context)

    def _run_job(self, job: _Job) -> list:
        """Run one group, falling back down the ranking when a backend fails."""
        candidates = job.decision.ranked if self.config.fallback else [job.decision.backend]
        failures: list[str] = list(job.failures)
        refusals: list[str] = []  # spending limits: not the backend's failure
        execution = uuid.uuid4().hex  # one charge per backend at most, retries included
        for position, name in enumerate(candidates):
            last = position == len(candidates) - 1
            method = _method_for(job.decision, name)
            spec = self._specs[name]
            quote = None
            if (spec.metered and job.group.tapes[0].shots) or spec.noise_model is not None:
                # a rehearsal is quoted too: the ledger records its circuits and shots
                quote = self._spending.quote(spec, job.group.tapes, job.group.key)
            start = time.perf_counter()
            try:
                with self._spending.charge(spec, quote, job.purpose, execution) as bill:
                    output, cached = self._run_on(name, job, method, job_tags(spec, execution))
                    if bill is not None:
                        bill.cached = cached
            except BudgetExceeded as err:
                if self.config.on_budget_exceeded == "raise":
                    raise
                refusals.append(f"{name}: {err}")
                logger.warning("budget: not running on %s (%s); %s", name, err, _next(last))
                continue
            except Exception as err:
                if not is_backend_fault(err):  # the input's fault: every backend would fail
                    err.add_note(
                        f"qstore.router: raised by backend {name!r} ({job.task}); not retried "
                        "on other backends, since this is an input error, not a backend fault"
                    )
                    raise
                failures.append(f"{name}: {type(err).__name__}: {err}")
                logger.warning("backend %s failed (%s: %s); %s", name, job.task, err, _next(last))
                continue
            seconds = time.perf_counter() - start
            charged = bill.charged if bill is not None else 0.0
            self.record_run(
                RunRecord(
                    job.group,
                    job.decision,
                    job.task,
                    name,
                    output,
                    seconds,
                    method=method,
                    cached=cached,
                    cost=charged,
                    failures=tuple(failures),
                    refusals=tuple(refusals),
                )
            )
            return output
        outcome = "failed or would pass a spending limit" if refusals else "failed"
        raise BackendExecutionError(
            f"every backend allowed for this {job.task} {outcome}: "
            + " | ".join(refusals + failures)
        )

    def _run_on(self, name: str, job: _Job, method: str | None, tags) -> tuple[list, int]:
        if job.interface is not None:  # never from a result cache: no gradient there
            width = job.decision.features.num_wires
            work = self._work(name, job.task, job.group.tapes, width)
            backend = self._local.get(work)
            return list(backend.backprop(work.tapes, job.interface, job.mcm_config)), 0
        if job.task is Task.EXECUTE:
            return self._execute_with_cache(name, job, tags)
        work = self._work(
            name,
            job.task,
            job.group.tapes,
            job.decision.features.num_wires,
            cotangents=job.cotangents,
            method=method,
            job_tags=tags,
        )
        return self._executor.run(work), 0

    def _execute_with_cache(self, name: str, job: _Job, tags) -> tuple[list, int]:
        tapes = job.group.tapes
        cached = {}
        for i, tape in enumerate(tapes):
            hit = self.cached_result(tape, name)
            if hit is not None:
                cached[i] = hit
        todo = [t for i, t in enumerate(tapes) if i not in cached]
        fresh = iter(())
        if todo:
            width = job.decision.features.num_wires
            work = self._work(name, job.task, todo, width, mcm_config=job.mcm_config, job_tags=tags)
            fresh = iter(self._executor.run(work))
        hits = sum(broadcast_size(tapes[i]) or 1 for i in cached)  # circuits, not tapes
        return [cached[i] if i in cached else next(fresh) for i in range(len(tapes))], hits

    def _work(
        self, name: str, task: Task, tapes, num_wires: int | None = None, **details
    ) -> GroupWork:
        """What the executor runs: plain data, cheap to ship to another process.

        ``num_wires`` is the structure's width when routing already knows it (a fresh
        tape's ``wires`` is a union over every gate).
        """
        width = max(num_wires if num_wires is not None else len(tapes[0].wires), 1)
        owner, spec, seed = self._executor.owner, self._specs[name], self.backend_seed(name, width)
        return GroupWork(owner, spec, width, seed, task, tapes, **details)

    def backend_seed(self, name: str, num_wires: int) -> int:
        """The seed of backend ``name``'s device on ``num_wires`` wires, drawn once from
        the router's own seed: a seeded router samples the same on every run."""
        key = (name, num_wires)
        if key not in self._seeds:
            self._seeds[key] = int(self._rng.integers(2**31 - 1))
        return self._seeds[key]

    # ------------------------------------- the door for runs that are not QNode tapes
    def route_group(
        self, group: TapeGroup, task: Task, expected: str | None = None
    ) -> tuple[RoutingDecision, BackendSpec]:
        """Route a group of circuits as :meth:`execute` routes its own, for a caller
        that runs them itself (a compiled layer's batch, bound from arrays).

        The same policy, precision, spending conditions, calibrated time models and
        decision cache apply; the caller then runs the group on the chosen backend
        and reports the run with :meth:`record_run`.

        Parameters
        ----------
        group : TapeGroup
            The circuits as plain tapes (one broadcast tape for a batch that one
            engine call runs), as the router's own grouping would make them.
        task : Task
            What runs now.
        expected : str, optional
            The derivative likely to follow a forward pass (``"vjp"`` when training).

        Returns
        -------
        tuple[RoutingDecision, BackendSpec]
            The decision, and the chosen backend's description.
        """
        purpose = current_purpose()
        decision = self._decide(group, task, purpose, expected, backprop=False, differenced=False)
        return decision, self._specs[decision.backend]

    def cached_result(self, tape: QuantumScript, backend: str) -> Any | None:
        """The result a callback holds for this exact execution on ``backend`` (a
        :class:`~qstore_pl.db.ResultCache`), or ``None``: then run it."""
        for callback in self._callbacks:
            lookup = getattr(callback, "lookup", None)
            hit = _safe_call(lookup, tape, backend) if lookup else None
            if hit is not None:
                return hit
        return None

    def record_run(self, run: RunRecord) -> None:
        """Log a run in the routing report, remember where its structure ran, count it
        in the tracker and hand each circuit to the callbacks (state recorder, result
        cache): what the router does after each of its own groups, for runs its
        compiled doors made too."""
        group = run.group
        self._memory.note(group.key, run.task, run.backend)
        circuits = sum(broadcast_size(t) or 1 for t in group.tapes)
        reason = run.decision.reason
        if run.note:
            reason = f"{reason} ({run.note})"
        if run.refusals:
            reason = (
                f"over a spending limit on {len(run.refusals)} backend(s); first choice: {reason}"
            )
        if run.failures:
            reason = f"fallback after {len(run.failures)} failure(s); first choice: {reason}"
        self._log.add(
            RoutedRun(
                task=run.task,
                backend=run.backend,
                circuits=circuits,
                seconds=run.seconds,
                reason=reason,
                failed=run.failures,
                refused=run.refusals,
                derivative_method=run.method,
                cached=run.cached,
                path=run.path,
            )
        )
        if self.tracker.active:
            self.tracker.update(
                backend=run.backend, cost=run.cost, **{f"executions:{run.backend}": circuits}
            )
            self.tracker.record()
        if not self._callbacks:
            return
        tapes = group.tapes if run.tapes is None else run.tapes
        share = run.seconds / len(tapes)
        states = run.states
        if states is None and run.tapes is None:  # the executor ran the group's tapes
            states = self._kept_states(run)
        states = states or [None] * len(tapes)
        for tape, value, state in zip(tapes, run.results, states):
            shots = tape.shots.total_shots if tape.shots else None
            record = ExecutionRecord(
                tape=tape,
                result=value,
                task=run.task,
                backend=run.backend,
                shots=shots,
                seconds=share,
                cost=run.cost * (broadcast_size(tape) or 1) / circuits,
                derivative_method=run.method,
                states=state,
            )
            for callback in self._callbacks:
                _safe_call(callback.on_execution, record)

    def _kept_states(self, run: RunRecord) -> list | None:
        """The final states the backend kept of the run's tapes, when a callback wants
        them (a recorder then stores them instead of simulating the circuits again)."""
        if run.task is not Task.EXECUTE or not any(
            getattr(cb, "wants_states", False) for cb in self._callbacks
        ):
            return None
        kept = getattr(self._executor, "kept_states", None)  # local executors only
        if kept is None:
            return None
        width = run.decision.features.num_wires
        return _safe_call(kept, self._work(run.backend, run.task, run.group.tapes, width))

    # ---------------------------------------------------------- transparency
    def routing_report(self) -> RoutingReport:
        """Totals per backend and recent runs: what ran where, and why."""
        return self._log.report()

    def cost_report(self) -> CostReport:
        """What was spent, per backend and purpose, from the spending ledger.

        Returns
        -------
        CostReport
            ``.total`` (USD), ``.by_backend``, ``.by_purpose``, ``.executions``,
            ``.shots``, ``.saved`` (USD a result cache saved), ``.unconfirmed``;
            printable.
        """
        return self._spending.report()

    def estimate_cost(self, circuit: CircuitLike, *args: Any, **kwargs: Any) -> CostEstimate:
        """Price a forward pass and a training step on every metered backend, before
        anything runs: gate counts before and after native compilation, and one step
        with the parameter-shift rule and with SPSA.

        Parameters
        ----------
        circuit : QNode or QuantumScript or Sequence[QuantumScript]
            A QNode is called with ``*args, **kwargs`` to build its tapes (not run).
        """
        tapes = self._device_tapes(circuit, *args, **kwargs)[0]
        return self._spending.estimate(group_by_structure(tapes))

    def reset_routing_report(self) -> None:
        """Forget the routing history."""
        self._log.clear()

    def explain(
        self, circuit: CircuitLike, *args: Any, derivative: str | None = "auto", **kwargs: Any
    ) -> RoutingExplanation:
        """Show every candidate backend, its estimate, and the choice for a circuit.

        Parameters
        ----------
        circuit : QNode or QuantumScript or Sequence[QuantumScript]
            What to explain. A QNode is called with ``*args, **kwargs`` to build its
            tapes, exactly as an execution would, without running them.
        derivative : {"auto", None, "jacobian", "vjp"}
            Explain the derivative pass instead of the forward pass. ``"auto"`` picks
            what the QNode's configuration would do when it has trainable parameters.

        Returns
        -------
        RoutingExplanation
            Printable; ``.decisions`` holds the decisions.
        """
        tapes, config = self._device_tapes(circuit, *args, **kwargs)
        if derivative == "auto":
            derivative = None
            if config.gradient_method == "adjoint" and any(t.trainable_params for t in tapes):
                derivative = "vjp" if config.use_device_jacobian_product else "jacobian"
        task = Task.EXECUTE if derivative is None else Task(derivative)
        backprop = task is Task.EXECUTE and config.gradient_method == "backprop"
        differenced = differences_values(config)
        groups = group_by_structure(tapes)
        decisions = tuple(
            self._decide(g, task, backprop=backprop, differenced=differenced) for g in groups
        )
        spending = self._spending.report().summary() if self._spending.active else None
        sources: dict[str, list[str]] = {}
        for spec in self.backends:
            sources.setdefault(spec.time_model_source, []).append(spec.name)
        time_models = "time models: " + "; ".join(
            f"{source}: {', '.join(names)}" for source, names in sources.items()
        )
        path = self.compiled.path_of(circuit.func) if isinstance(circuit, qml.QNode) else None
        return RoutingExplanation(
            decisions, tuple(len(g.tapes) for g in groups), spending, time_models, path
        )

    def _device_tapes(self, circuit, *args, **kwargs):
        """The tapes the router would route for a circuit, and the execution config."""
        if isinstance(circuit, qml.QNode):
            tapes, _ = qml.workflow.construct_batch(circuit, level="device")(*args, **kwargs)
            config = qml.workflow.construct_execution_config(circuit)(*args, **kwargs)
        else:
            tapes = [circuit] if isinstance(circuit, QuantumScript) else list(circuit)
            config = self.setup_execution_config()
            tapes, _ = self.preprocess_transforms(config)(tapes)
        return tapes, config


def check_parameters(tape: QuantumScript) -> None:
    """Raise at once if a gate parameter is not a number, or is NaN or infinite.

    Raises
    ------
    ParameterTypeError
        A parameter is text (or an array of it) or ``None``.
    InvalidParameterError
        A parameter is NaN or infinite.
    """
    values = [np.asarray(v) for op in tape.operations for v in op.data]
    if any(_not_numbers(v) for v in values):
        _raise_for_non_number(tape)
    numeric = [v.ravel() for v in values if v.dtype.kind in "fc"]
    if not numeric or np.isfinite(np.concatenate(numeric)).all():
        return  # one vectorised check for the common case
    for op in tape.operations:
        for i, value in enumerate(op.data):
            array = np.asarray(value)
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                raise InvalidParameterError(
                    f"parameter {i} of {op.name} on wires {op.wires.tolist()} is not finite "
                    f"({value!r}); the router will not run NaN or infinite parameters. Check "
                    "the inputs and weights feeding this circuit (a diverged optimiser or a "
                    "division by zero upstream)."
                )


def _not_numbers(array: np.ndarray) -> bool:
    """Whether a parameter is text, raw bytes or ``None``."""
    kind = array.dtype.kind
    return kind in "USV" or (kind == "O" and array.ndim == 0 and array.item() is None)


def _raise_for_non_number(tape: QuantumScript) -> None:
    for op in tape.operations:
        for i, value in enumerate(op.data):
            if _not_numbers(np.asarray(value)):
                raise ParameterTypeError(
                    # no wires: the tape is on the backend's wires by now, not the user's
                    f"parameter {i} of {op.name} is {excerpt(value)} ({type(value).__name__}), "
                    "not a number; gate parameters must "
                    "be numbers or arrays of numbers. Pass numbers to the QNode (convert "
                    "text with float(...))."
                )


def _entropy(seed) -> int | list[int] | np.random.Generator | np.random.SeedSequence | None:
    """NumPy's seed for ``seed``: an int, a NumPy generator or seed sequence, or a JAX
    PRNG key's numbers (default.qubit takes each)."""
    if seed is None or isinstance(seed, int | np.integer):
        return None if seed is None else int(seed)
    if isinstance(seed, np.random.Generator | np.random.SeedSequence):
        return seed
    return [int(v) for v in np.asarray(seed).ravel()]


@contextlib.contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Leave NumPy's global random generator as it was: a seeded user script must draw
    the same numbers whether or not it built a router (default.qubit, built to probe
    and calibrate backends, seeds itself from the global generator)."""
    state = np.random.get_state()  # noqa: NPY002  (the legacy global one is the point)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _next(last: bool) -> str:
    return "no backend left to try" if last else "trying the next"


def _method_for(decision: RoutingDecision, backend: str) -> str | None:
    for candidate in decision.candidates:
        if candidate.backend == backend:
            return candidate.derivative_method
    return None


def _check_callbacks(callbacks) -> tuple[DeviceCallback, ...]:
    if isinstance(callbacks, DeviceCallback):
        callbacks = (callbacks,)
    for cb in callbacks:
        if not callable(getattr(cb, "on_execution", None)):
            raise ConfigError(
                f"callback {cb!r} has no on_execution(record) method; subclass "
                "qstore_pl.callbacks.DeviceCallback"
            )
    return tuple(callbacks)


def _safe_call(fn: Callable, *args):
    try:
        return fn(*args)
    except Exception as err:  # a callback must never break or lose a computation
        logger.warning("callback %r failed: %s", fn, err)
        return None
