"""Device callbacks: the seam between the router device and the state database.

The router calls every registered callback with an :class:`ExecutionRecord` per
circuit it executes, and asks callbacks that cache results before it runs a circuit.
This module sits below both ``devices`` and ``db`` so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the recorder's delivery process imports this module without PennyLane
    from pennylane.tape import QuantumScript


@dataclass(frozen=True)
class ExecutionRecord:
    """One circuit executed by the router.

    Attributes
    ----------
    tape : QuantumScript
        The circuit as it ran (after the router's preprocessing).
    result : Any
        Its result (for ``task="execute"``) or derivative (``"jacobian"``, ``"vjp"``).
    task : str
        ``"execute"``, ``"jacobian"`` or ``"vjp"``.
    backend : str
        Name of the backend that produced the result.
    shots : int or None
        Shots used; ``None`` for analytic results.
    seconds : float
        Wall time of the group the circuit ran in, divided by the group's size.
    cost : float
        Charge in USD attributed to this circuit.
    derivative_method : str or None
        How derivatives were computed, for derivative tasks.
    states : numpy.ndarray or None
        The final states the backend computed for this circuit, shape
        ``(batch, 2**n)`` over wires ``0 .. n-1``, when the backend kept them and a
        callback asked for them (:attr:`DeviceCallback.wants_states`); ``None``
        otherwise. The backend's own memory: read it during the call, copy to keep.
    """

    tape: QuantumScript
    result: Any
    task: str
    backend: str
    shots: int | None
    seconds: float
    cost: float = 0.0
    derivative_method: str | None = None
    states: Any = None


class DeviceCallback:
    """Base class of router callbacks; override what you need.

    Exceptions raised by a callback are logged and never reach the computation.
    """

    #: Set to ``True`` to receive :attr:`ExecutionRecord.states` where a backend kept
    #: the final states of the circuits it ran (the router asks only then).
    wants_states: bool = False

    def lookup(self, tape: QuantumScript, backend: str) -> Any | None:
        """A stored result for ``tape`` on ``backend``, or ``None`` to execute it."""
        return None

    def on_execution(self, record: ExecutionRecord) -> None:
        """Called after each circuit execution."""
