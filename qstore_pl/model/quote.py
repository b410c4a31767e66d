"""``Quote``: what a training run will execute and cost, known before it starts.

Cloud providers price one circuit or one task; a training run is thousands of them,
and the gradient method decides how many (the parameter-shift rule runs two shifted
circuits per trainable gate parameter for every sample of every step, SPSA two per
sample whatever the number of parameters). A quote counts them phase by phase, with
the backend the router would choose for each, and prices every job as the router's
ledger will.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from qstore_pl.exceptions import BudgetExceeded, QstoreError


@dataclass(frozen=True)
class QuoteLine:
    """One phase of one epoch on one backend.

    Attributes
    ----------
    phase : {"forward", "gradient", "forward+gradient", "backward", "validation"}
        ``forward``: the training batches; ``gradient``: the circuits the gradient
        method adds (shifted or perturbed copies); ``forward+gradient``: both, when a
        step submits them as one job (JAX under ``jax.jit``); ``backward``: adjoint
        sweeps on a simulator (no extra circuits); ``validation``: the validation
        set, once.
    backend : str
        Where the router would run it.
    jobs : int
        Jobs (groups of circuits submitted together) per epoch.
    circuits : int
        Circuit executions per epoch (adjoint sweeps for ``backward``).
    shots : int
        Shots per epoch (circuits x shots per circuit; 0 for exact simulation).
    usd : float
        Price per epoch.
    seconds : float or None
        Estimated time per epoch, from the router's time models.
    """

    phase: str
    backend: str
    jobs: int
    circuits: int
    shots: int
    usd: float
    seconds: float | None = None


@dataclass(frozen=True)
class Quote:
    """A training run priced before anything runs; ``str()`` gives a table.

    Attributes
    ----------
    epochs : int
        Epochs quoted.
    steps_per_epoch : int
        Training steps (batches) per epoch.
    gradient : {"adjoint", "parameter-shift", "spsa"}
        The gradient method the run uses.
    gradient_reason : str
        Why that method.
    trainable : int
        Trainable gate parameters per circuit (after the device's decomposition).
    shots : int or None
        Shots per circuit.
    lines : tuple[QuoteLine, ...]
        Per phase and backend, per epoch.
    alternatives : dict[str, float]
        Total USD of the same run with the other applicable gradient methods.
    """

    epochs: int
    steps_per_epoch: int
    gradient: str
    gradient_reason: str
    trainable: int
    shots: int | None
    lines: tuple[QuoteLine, ...]
    alternatives: dict[str, float] = field(default_factory=dict)

    # ---------------------------------------------------------- per epoch
    @property
    def circuits_per_epoch(self) -> int:
        """Circuit executions per epoch (adjoint backward sweeps not included)."""
        return sum(x.circuits for x in self.lines if x.phase != "backward")

    @property
    def backward_passes_per_epoch(self) -> int:
        """Adjoint backward sweeps per epoch (one per training sample)."""
        return sum(x.circuits for x in self.lines if x.phase == "backward")

    @property
    def shots_per_epoch(self) -> int:
        """Shots per epoch, all circuits together."""
        return sum(x.shots for x in self.lines)

    @property
    def usd_per_epoch(self) -> float:
        """USD per epoch."""
        return sum(x.usd for x in self.lines)

    @property
    def seconds_per_epoch(self) -> float | None:
        """Estimated seconds per epoch (``None`` where no time model applies)."""
        return sum_or_none(x.seconds for x in self.lines)

    # -------------------------------------------------------------- totals
    @property
    def circuits(self) -> int:
        """Circuit executions of the whole run."""
        return self.circuits_per_epoch * self.epochs

    @property
    def backward_passes(self) -> int:
        """Adjoint backward sweeps of the whole run."""
        return self.backward_passes_per_epoch * self.epochs

    @property
    def total_shots(self) -> int:
        """Shots of the whole run."""
        return self.shots_per_epoch * self.epochs

    @property
    def usd_by_backend(self) -> dict[str, float]:
        """USD of the whole run per backend."""
        out: dict[str, float] = {}
        for x in self.lines:
            out[x.backend] = out.get(x.backend, 0.0) + x.usd * self.epochs
        return out

    @property
    def total_usd(self) -> float:
        """USD of the whole run."""
        return self.usd_per_epoch * self.epochs

    @property
    def seconds(self) -> float | None:
        """Estimated seconds of the whole run."""
        per_epoch = self.seconds_per_epoch
        return None if per_epoch is None else per_epoch * self.epochs

    def __str__(self) -> str:
        shots = "exact" if self.shots is None else f"{self.shots} shots per circuit"
        out = [
            f"training quote: {self.epochs} epoch(s) x {self.steps_per_epoch} step(s), "
            f"{self.trainable} trainable gate parameters, {shots}",
            f"  gradient: {self.gradient} ({self.gradient_reason})",
            f"  per epoch: {'phase':<17}{'backend':<20}{'jobs':>6}{'circuits':>10}"
            f"{'shots':>11}{'USD':>11}{'seconds':>10}",
        ]
        for x in self.lines:
            seconds = "-" if x.seconds is None else f"{x.seconds:.2f}"
            circuits = f"{x.circuits}" + ("*" if x.phase == "backward" else "")
            out.append(
                f"  {'':<11}{x.phase:<17}{x.backend:<20}{x.jobs:>6}{circuits:>10}"
                f"{x.shots:>11}{x.usd:>11.2f}{seconds:>10}"
            )
        if any(x.phase == "backward" for x in self.lines):
            out.append("  (* adjoint backward sweeps, one per sample: no extra circuits)")
        seconds = "unknown" if self.seconds is None else f"~{self.seconds:.1f} s"
        out.append(
            f"  total: {self.circuits} circuits, {self.total_shots} shots, "
            f"{self.total_usd:.2f} USD, {seconds}"
        )
        for backend, usd in self.usd_by_backend.items():
            out.append(f"    {backend}: {usd:.2f} USD")
        for method, usd in self.alternatives.items():
            out.append(f"  with {method} instead: {usd:.2f} USD")
        return "\n".join(out)


class QuoteOverBudget(BudgetExceeded):
    """A training run's quote is over its ``budget``; nothing was submitted.

    A :class:`~qstore_pl.exceptions.BudgetExceeded` (``kind="training"``) that
    carries the :class:`Quote`.
    """

    def __init__(self, quote: Quote, budget: float):
        by_backend = quote.usd_by_backend
        backend = max(by_backend, key=by_backend.__getitem__)
        QstoreError.__init__(self, _refusal(quote, budget))
        self.backend, self.estimate, self.spent, self.limit, self.kind = (
            backend,
            quote.total_usd,
            0.0,
            budget,
            "training",
        )
        self.quote = quote

    def __reduce__(self):
        return type(self), (self.quote, self.limit)


def _refusal(quote: Quote, budget: float) -> str:
    fixes = [f"raise budget to at least {quote.total_usd:.2f}", "lower epochs or shots"]
    cheaper = {m: usd for m, usd in quote.alternatives.items() if usd <= budget}
    fixes += [f"use gradient={m!r} (quoted {usd:.2f} USD)" for m, usd in cheaper.items()]
    fixes.append("train on a free simulator (backend='qstore.router', shots=None)")
    return (
        f"training is quoted at {quote.total_usd:.2f} USD ({quote.epochs} epoch(s) x "
        f"{quote.usd_per_epoch:.2f} USD: {quote.circuits} circuits, {quote.total_shots} shots, "
        f"gradient {quote.gradient}), over the budget of {budget:.2f} USD. Nothing was "
        f"submitted. To train, {', or '.join(fixes)}."
    )


def sum_or_none(values: Iterable[float | None]) -> float | None:
    """The sum of ``values``, or ``None`` when any of them is unknown (``None``)."""
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total
