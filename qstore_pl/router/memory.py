"""What the router remembers per circuit structure, in one object.

QNodes ask the same questions on every call, so the answers are kept per structure:
the preprocessing pipeline per setting, whether the adjoint method applies, the
workload features and (without prices, outages or queues) the routing decision.

A training loop runs a forward pass and then a derivative of the same structures, over
and over. The router remembers where each structure's last forward pass ran (a
derivative that follows finds the forward states there) and which derivative followed
it, so that the next forward pass is routed for the pair; two forward passes in a row
mean inference, and the guess is dropped. Every memory is bounded: the least recently
used structures are forgotten first.
"""

from __future__ import annotations

from collections.abc import Hashable

from pennylane.transforms.core import CompilePipeline

from qstore_pl.devices.adjoint_support import KEPT as ADJOINT_KEPT
from qstore_pl.router.execution.task import Task
from qstore_pl.router.routing.policy import RoutingDecision
from qstore_pl.router.routing.workload import WorkloadFeatures
from qstore_pl.support.bounded_cache import BoundedCache

#: Structures remembered.
STRUCTURES_KEPT = 256
#: Preprocessing pipelines kept, one per setting (derivative method, interface...).
PIPELINES_KEPT = 32


class StructureMemory:
    """The router's per-structure answers and its guess of the training sequence."""

    def __init__(self, kept: int = STRUCTURES_KEPT):
        self.pipelines: BoundedCache[Hashable, CompilePipeline] = BoundedCache(PIPELINES_KEPT)
        self.supports_adjoint: BoundedCache[Hashable, bool] = BoundedCache(ADJOINT_KEPT)
        self.features: BoundedCache[Hashable, WorkloadFeatures] = BoundedCache(kept)
        self.decisions: BoundedCache[Hashable, RoutingDecision] = BoundedCache(kept)
        # structure -> the backend that ran its last forward pass
        self._last_forward: BoundedCache[Hashable, str] = BoundedCache(kept)
        # structure -> the derivative asked for after its last forward pass
        self._followed_by: BoundedCache[Hashable, str] = BoundedCache(kept)
        # structures whose last forward pass has had no derivative yet
        self._awaiting: BoundedCache[Hashable, bool] = BoundedCache(kept)

    def last_forward(self, key: Hashable) -> str | None:
        """The backend that ran the last forward pass of structure ``key``."""
        return self._last_forward.get(key)

    def expected_derivative(
        self, key: Hashable, configured: str | None, trainable: bool
    ) -> str | None:
        """The derivative expected to follow a forward pass of structure ``key``.

        What followed its last forward pass; for a structure never run, the
        derivative its configuration asks for (``configured``) when it has
        ``trainable`` parameters; ``None`` after two forward passes in a row.
        """
        if key in self._awaiting:  # its last forward pass had no derivative: inference
            return None
        first = key not in self._last_forward
        return self._followed_by.get(key, configured if first and trainable else None)

    def note(self, key: Hashable, task: Task, backend: str) -> None:
        """Remember that ``task`` ran for structure ``key`` on ``backend``."""
        if task is Task.EXECUTE:
            if key in self._awaiting:  # two forward passes in a row: inference
                self._followed_by.pop(key)
            self._last_forward[key] = backend
            self._awaiting[key] = True
        elif not task.with_results:
            derivative = task.derivative
            assert derivative is not None, "every task but EXECUTE names its derivative"
            self._followed_by[key] = derivative
            self._awaiting.pop(key)
