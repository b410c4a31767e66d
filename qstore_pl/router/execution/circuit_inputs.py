"""The router's door for circuit-input layers (PQC, ControlledPQC) that bind arrays.

Such a layer runs its batch as a compiled program on the batched engine
(:mod:`qstore_pl.devices.batched.circuit_inputs`), with no tape per sample. The
router still decides: the batch is described by one representative circuit (data
circuit + model) broadcast over the batch, since one engine call runs it, and routed
as that tape would be
(same policy, precision, spending conditions and decision cache). Only a
``qstore.batched`` backend, run in this process, can take the path; for any other
choice :func:`choose_engine` says why, and the layer runs its tapes through the
router as before. Each run is logged in the routing report and counted by the
tracker as the router's own runs are.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pennylane.tape import QuantumScript

from qstore_pl.devices.grouping import TapeGroup, broadcast_size, structure_key
from qstore_pl.router.execution.compiled import engine_decision
from qstore_pl.router.execution.executors import SerialExecutor
from qstore_pl.router.execution.task import Task
from qstore_pl.router.report import RoutedRun

if TYPE_CHECKING:
    from qstore_pl.router.device import RouterDevice
    from qstore_pl.router.routing.policy import RoutingDecision

#: What the routing report says about runs on this path.
PATH_NOTE = "circuit-input program, no tapes"


@dataclass(frozen=True)
class EngineChoice:
    """The router's decision for a batch, when its engine can run the program."""

    decision: RoutingDecision
    backend: str
    c_dtype: np.dtype
    group_key: Hashable


def choose_engine(
    router: RouterDevice, representative: QuantumScript, batch: int, training: bool
) -> EngineChoice | str:
    """Route ``batch`` copies of ``representative``; the choice, or why the
    compiled path cannot take it.

    Parameters
    ----------
    router : RouterDevice
        The router whose policy and backends decide.
    representative : QuantumScript
        One sample's full circuit (data + model), its symbol-driven angles trainable,
        broadcast over the batch (or not, then routed as ``batch`` copies).
    batch : int
        Samples in the batch.
    training : bool
        Whether a VJP will follow (the router routes the forward pass for it).
    """
    if router.callbacks:
        return "the router has callbacks, which see every circuit as a tape"
    if not isinstance(router.executor, SerialExecutor):
        return "the router runs groups on another executor (Dask)"
    key = structure_key(representative)
    if broadcast_size(representative) == batch:  # one engine call: one broadcast tape
        group = TapeGroup([0], [representative], key)
    else:
        group = TapeGroup(list(range(batch)), [representative] * batch, key)
    choice = engine_decision(router, group, training)
    if isinstance(choice, str):
        return choice
    decision, spec = choice
    c_dtype = np.dtype(spec.device_kwargs.get("c_dtype", np.complex128))
    return EngineChoice(decision, decision.backend, c_dtype, key)


def record(
    router: RouterDevice, choice: EngineChoice, task: Task, circuits: int, seconds: float
) -> None:
    """Log a run in the routing report, the structure memory and the tracker."""
    router._memory.note(choice.group_key, task, choice.backend)
    router._log.add(
        RoutedRun(
            task=task,
            backend=choice.backend,
            circuits=circuits,
            seconds=seconds,
            reason=f"{choice.decision.reason} ({PATH_NOTE})",
            derivative_method="adjoint" if task.derivative else None,
        )
    )
    tracker = router.tracker
    if tracker.active:
        tracker.update(
            backend=choice.backend, cost=0.0, **{f"executions:{choice.backend}": circuits}
        )
        tracker.record()
