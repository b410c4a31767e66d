"""Explain routing decisions in words and tables."""

from __future__ import annotations

from dataclasses import dataclass

from qstore_pl.router.routing.policy import RoutingDecision, format_seconds, format_usd


@dataclass(frozen=True)
class RoutingExplanation:
    """Decisions for every structure group of a circuit batch.

    Attributes
    ----------
    decisions : tuple[RoutingDecision, ...]
        One decision per group, in batch order.
    group_sizes : tuple[int, ...]
        Number of tapes in each group.
    spending : str or None
        The ledger's state for a router with priced backends (see
        :meth:`~qstore_pl.router.money.report.CostReport.summary`).
    time_models : str
        Which backends' time models were measured on this machine and which are built in.
    path : str or None
        For a QNode a compiled layer runs: which path its calls take (``"compiled"``,
        or ``"qnode"`` and why).
    """

    decisions: tuple[RoutingDecision, ...]
    group_sizes: tuple[int, ...]
    spending: str | None = None
    time_models: str = ""
    path: str | None = None

    @property
    def chosen(self) -> list[str]:
        """The backend chosen for each group."""
        return [d.backend for d in self.decisions]

    def __str__(self) -> str:
        parts = [
            format_decision(d, size, i)
            for i, (d, size) in enumerate(zip(self.decisions, self.group_sizes))
        ]
        path = f"layer path: {self.path}" if self.path else None
        extra = [text for text in (self.spending, self.time_models, path) if text]
        return "\n\n".join(parts + extra)


def format_decision(decision: RoutingDecision, tapes: int = 1, index: int = 0) -> str:
    """A table of every candidate for one decision, the chosen one marked."""
    f = decision.features
    task = "forward" if f.derivative is None else f"forward + {f.derivative}"
    shots = "analytic" if f.shots is None else f"{f.shots} shots"
    lines = [
        f"group {index}: {tapes} tape(s), {f.batch_size} circuit(s), {f.num_wires} wires, "
        f"depth {f.depth}, {f.num_1q_gates}x1q + {f.num_2q_gates}x2q"
        + (f" + {f.num_multi_gates}xNq" if f.num_multi_gates else "")
        + f" gates, {f.num_trainable} trainable, {shots}, {task}",
        f"  policy: {decision.policy}",
    ]
    priced = decision.policy == "cost_optimized" or any(c.cost for c in decision.candidates)
    cost_header = f"{'est. cost':>12}" if priced else ""
    lines.append(
        f"  {'':2}{'backend':<18}{'est. time':>11}{cost_header}  {'precision':<10}"
        f"{'derivatives':<17}notes"
    )
    for c in decision.candidates:
        mark = "->" if c.backend == decision.backend else "  "
        seconds = format_seconds(c.seconds) if c.seconds is not None else "-"
        cost = f"{format_usd(c.cost):>12}" if priced else ""
        method = c.derivative_method or "-"
        notes = "; ".join(c.reasons) if not c.eligible else ""
        lines.append(
            f"  {mark}{c.backend:<18}{seconds:>11}{cost}  {c.precision:<10}{method:<17}{notes}"
        )
    lines.append(f"  chosen: {decision.backend} ({decision.reason})")
    if decision.order[1:]:
        lines.append(f"  fallback chain: {', '.join(decision.order[1:])}")
    return "\n".join(lines)
