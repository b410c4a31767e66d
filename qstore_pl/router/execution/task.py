"""What a routed group of circuits is run for: results, derivatives, or both at once."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """The work asked of a backend for a group of circuits.

    A ``StrEnum``: each member equals its value (``Task.VJP == "vjp"``), which is also
    what :attr:`ExecutionRecord.task <qstore_pl.callbacks.ExecutionRecord.task>`
    compares equal to.
    """

    EXECUTE = "execute"
    JACOBIAN = "jacobian"
    VJP = "vjp"
    EXECUTE_JACOBIAN = "execute+jacobian"
    EXECUTE_VJP = "execute+vjp"

    @property
    def derivative(self) -> str | None:
        """``"jacobian"``, ``"vjp"`` or ``None`` (results only)."""
        if self is Task.EXECUTE:
            return None
        return "vjp" if self in (Task.VJP, Task.EXECUTE_VJP) else "jacobian"

    @property
    def with_results(self) -> bool:
        """Whether the results come too (a derivative computed on execution)."""
        return self in (Task.EXECUTE_JACOBIAN, Task.EXECUTE_VJP)
