"""Where the money went: totals from the spending ledger, printable."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CostReport:
    """Spending recorded in a ledger.

    Attributes
    ----------
    total : float
        USD charged for completed jobs.
    by_backend, by_purpose : dict[str, float]
        ``total`` split by backend and by purpose (development, training, validation).
    executions, shots : dict[str, int]
        Circuits run and shots taken per backend (priced backends only).
    saved : float
        USD not spent because a result cache answered (fed by the router when a
        callback's ``lookup`` hits, and by :meth:`Ledger.record_saving`).
    unconfirmed : float
        USD reserved for jobs that may have run but were not confirmed (a timeout, no
        answer to a submission, lost results, a process that ended mid-job); counted
        against the budget until ``qstore-pl ledger reconcile`` reads the provider's
        record.
    unreconciled : float
        USD of ``total`` not yet checked against the provider's record.
    rehearsals : dict[str, str]
        Backends that rehearsed hardware runs (at 0 USD, listed with their circuits and
        shots beside the priced backends) and the noise model each used.
    budget : float or None
        The configured budget, if any.
    ledger : str
        Path of the ledger the report reads.
    """

    total: float = 0.0
    by_backend: dict[str, float] = field(default_factory=dict)
    by_purpose: dict[str, float] = field(default_factory=dict)
    executions: dict[str, int] = field(default_factory=dict)
    shots: dict[str, int] = field(default_factory=dict)
    saved: float = 0.0
    unconfirmed: float = 0.0
    unreconciled: float = 0.0
    rehearsals: dict[str, str] = field(default_factory=dict)
    budget: float | None = None
    ledger: str = ""

    @property
    def remaining(self) -> float | None:
        """Budget left (USD), ``None`` without a budget."""
        if self.budget is None:
            return None
        return max(self.budget - self.total - self.unconfirmed, 0.0)

    def summary(self) -> str:
        """One line: spent, unconfirmed, unreconciled, budget left."""
        parts = [f"{self.total:.2f} USD charged"]
        if self.unreconciled:
            parts.append(f"{self.unreconciled:.2f} of it not reconciled with the provider")
        if self.unconfirmed:
            parts.append(f"{self.unconfirmed:.2f} USD unconfirmed (may have run)")
        if self.budget is not None:
            parts.append(f"budget {self.budget:.2f} USD, {self.remaining:.2f} left")
        line = "spending: " + ", ".join(parts)
        if self.unconfirmed or self.unreconciled:
            line += "; `qstore-pl ledger reconcile` checks them against the provider"
        return line

    def __str__(self) -> str:
        lines = [f"qstore.router: cost report ({self.ledger})"]
        lines.append(f"  {'backend':<20}{'USD':>12}{'circuits':>10}{'shots':>12}")
        names = sorted(
            set(self.by_backend) | set(self.executions), key=lambda n: -self.by_backend.get(n, 0)
        )
        for name in names:
            note = f"  rehearsal ({self.rehearsals[name]} noise)" if name in self.rehearsals else ""
            lines.append(
                f"  {name:<20}{self.by_backend.get(name, 0.0):>12.2f}"
                f"{self.executions.get(name, 0):>10}{self.shots.get(name, 0):>12}{note}"
            )
        if not names:
            lines.append("  (no priced executions yet)")
        lines.append(f"  {'total':<20}{self.total:>12.2f}")
        if self.by_purpose:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.by_purpose.items()))
            lines.append(f"  by purpose: {parts} USD")
        if self.unconfirmed:
            lines.append(
                f"  unconfirmed (jobs that may have run, counted against the budget): "
                f"{self.unconfirmed:.2f} USD; run `qstore-pl ledger reconcile`"
            )
        if self.unreconciled:
            lines.append(
                f"  not yet reconciled with the provider: {self.unreconciled:.2f} USD of the total"
            )
        lines.append(f"  saved by the result cache: {self.saved:.2f} USD")
        if self.budget is not None:
            lines.append(f"  budget: {self.budget:.2f} USD, remaining {self.remaining:.2f} USD")
        return "\n".join(lines)
