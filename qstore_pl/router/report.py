"""What ran where: a running log of routed groups and its summary."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RoutedRun:
    """One group of circuits executed on one backend.

    Attributes
    ----------
    task : str
        ``"execute"``, ``"jacobian"``, ``"vjp"`` or ``"execute+..."`` combinations.
    backend : str
        Backend that produced the results.
    circuits : int
        Circuit executions in the group (parameter broadcasting included).
    seconds : float
        Wall time on the backend.
    reason : str
        Why the router chose the first backend it tried.
    failed : tuple[str, ...]
        Backends that failed before this one succeeded (``"name: error"``).
    refused : tuple[str, ...]
        Backends passed over because the job would pass a spending limit
        (``"name: reason"``); a refusal is not a failure of the backend.
    derivative_method : str or None
        How derivatives were computed.
    cached : int
        Circuits answered from a result cache instead of the backend.
    path : str
        ``"qnode"``: tapes from a QNode; ``"compiled"``: a compiled layer's value
        program (:mod:`qstore_pl.layers.compiled`), bound from arrays with no tape.
    """

    task: str
    backend: str
    circuits: int
    seconds: float
    reason: str
    failed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    derivative_method: str | None = None
    cached: int = 0
    path: str = "qnode"


@dataclass
class BackendTotals:
    """Running totals for one backend."""

    groups: int = 0
    circuits: int = 0
    derivative_groups: int = 0
    seconds: float = 0.0
    failures: int = 0
    refused: int = 0  # jobs not sent because of a spending limit
    cached: int = 0
    compiled: int = 0  # groups run as compiled layers' value programs


@dataclass
class RoutingReport:
    """Totals per backend and the most recent runs; ``str()`` gives a table."""

    totals: dict[str, BackendTotals] = field(default_factory=dict)
    recent: list[RoutedRun] = field(default_factory=list)

    def __str__(self) -> str:
        lines = ["qstore.router: what ran where"]
        header = f"  {'backend':<18}{'groups':>8}{'circuits':>10}{'with grads':>12}{'seconds':>10}"
        header += f"{'failed':>8}{'refused':>9}{'cached':>8}"
        lines.append(header)
        for name, t in sorted(self.totals.items(), key=lambda kv: -kv[1].circuits):
            lines.append(
                f"  {name:<18}{t.groups:>8}{t.circuits:>10}{t.derivative_groups:>12}"
                f"{t.seconds:>10.3f}{t.failures:>8}{t.refused:>9}{t.cached:>8}"
            )
        if not self.totals:
            lines.append("  (nothing executed yet)")
        compiled = sum(t.compiled for t in self.totals.values())
        if compiled:
            groups = sum(t.groups for t in self.totals.values())
            lines.append(
                f"  paths: {compiled} group(s) compiled (value programs), "
                f"{groups - compiled} from QNode tapes"
            )
        reasons: dict[tuple[str, str, str], str] = {}
        for run in self.recent:
            reasons.setdefault((run.backend, run.task, run.path), run.reason)
        if reasons:
            lines.append("  latest reasons:")
            for (backend, task, path), reason in reasons.items():
                lines.append(f"    {task:<15} -> {backend} ({path} path): {reason}")
        return "\n".join(lines)


class RoutingLog:
    """Thread-safe log of routed runs with per-backend totals.

    Parameters
    ----------
    keep : int
        How many recent runs to keep in full.
    """

    def __init__(self, keep: int = 200):
        self._recent: deque[RoutedRun] = deque(maxlen=keep)
        self._totals: dict[str, BackendTotals] = {}
        self._lock = threading.Lock()

    def add(self, run: RoutedRun) -> None:
        """Record a run, and the failures that preceded it."""
        with self._lock:
            self._recent.append(run)
            totals = self._totals.setdefault(run.backend, BackendTotals())
            totals.groups += 1
            totals.circuits += run.circuits
            totals.seconds += run.seconds
            totals.cached += run.cached
            totals.compiled += run.path == "compiled"
            if run.task != "execute":
                totals.derivative_groups += 1
            for failure in run.failed:
                name = failure.split(":", 1)[0]
                self._totals.setdefault(name, BackendTotals()).failures += 1
            for refusal in run.refused:
                name = refusal.split(":", 1)[0]
                self._totals.setdefault(name, BackendTotals()).refused += 1

    def report(self) -> RoutingReport:
        """A snapshot of the totals and recent runs."""
        with self._lock:
            totals = {k: BackendTotals(**vars(v)) for k, v in self._totals.items()}
            return RoutingReport(totals=totals, recent=list(self._recent))

    def clear(self) -> None:
        """Forget everything logged so far."""
        with self._lock:
            self._recent.clear()
            self._totals.clear()
