"""What the router records of a run, whichever path ran it.

The router's own groups (a QNode's tapes) and the batches its compiled doors run
(:mod:`~qstore_pl.router.execution.compiled`, :mod:`~qstore_pl.router.execution.
circuit_inputs`) are logged in the routing report, remembered for the derivative that
follows, counted by the tracker and shown to callbacks in one way:
a :class:`RunRecord` carries what that needs, and
:meth:`~qstore_pl.router.device.RouterDevice.record_run` is the one place that does it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qstore_pl.devices.grouping import TapeGroup
from qstore_pl.router.execution.task import Task

if TYPE_CHECKING:
    from pennylane.tape import QuantumScript

    from qstore_pl.router.routing.policy import RoutingDecision


@dataclass(frozen=True)
class RunRecord:
    """One routed group of circuits that ran on one backend.

    Attributes
    ----------
    group : TapeGroup
        The group as it was routed: its structure is remembered (a derivative goes
        where the forward states are) and its tapes count the circuits.
    decision : RoutingDecision
        The routing decision (its reason goes into the report).
    task : Task
        What ran.
    backend : str
        The backend that produced the results.
    results : Sequence
        Per tape of :attr:`tapes`: its result, or its derivative for derivative tasks.
    seconds : float
        Wall time of the run.
    tapes : Sequence[QuantumScript] or None
        What callbacks see, one :class:`~qstore_pl.callbacks.ExecutionRecord` each,
        when that differs from the group's tapes: a compiled batch gives its circuits
        with their real parameters (built only when the router has callbacks).
    states : Sequence or None
        Per tape of :attr:`tapes`: the final states ``(batch, 2**n)`` the backend kept.
        ``None``: none, or (for the group's own tapes) ask the executor that ran them.
    method : str or None
        How derivatives were computed.
    cached : int
        Circuits answered from a result cache.
    cost : float
        USD charged for the group.
    failures, refusals : tuple[str, ...]
        Backends that failed, or were passed over for a spending limit, first.
    path : str
        ``"qnode"`` (tapes) or ``"compiled"`` (a program bound from arrays).
    note : str or None
        Added to the routing reason in the report (how a compiled run ran).
    """

    group: TapeGroup
    decision: RoutingDecision
    task: Task
    backend: str
    results: Sequence[Any]
    seconds: float
    tapes: Sequence[QuantumScript] | None = None
    states: Sequence[Any] | None = None
    method: str | None = None
    cached: int = 0
    cost: float = 0.0
    failures: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    path: str = "qnode"
    note: str | None = None
