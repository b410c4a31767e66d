"""Routing policies: choose a backend for a workload.

A policy ranks the eligible candidates; :func:`route` applies the eligibility rules
that hold for every policy (capabilities, precision) and records the reasons, so any
decision can be explained afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from qstore_pl.exceptions import ConfigError, UnsupportedCircuitError
from qstore_pl.router.routing.noise import noise_fix
from qstore_pl.router.routing.refusal import no_backend_message, purpose_note
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.router.routing.workload import WorkloadFeatures

# Estimated times closer than this ratio count as a tie, broken by precision.
_TIE_RATIO = 1.10


@dataclass(frozen=True)
class CandidateEstimate:
    """One backend's standing for a workload.

    Attributes
    ----------
    backend : str
        Backend name.
    eligible : bool
        Whether it can run the workload at all.
    reasons : tuple[str, ...]
        Why it is not eligible (empty when eligible).
    derivative_method : str or None
        How it would compute derivatives, when the workload needs them.
    seconds : float or None
        Estimated time (``None`` when not eligible).
    precision : str
        ``"single"`` or ``"double"``.
    cost : float or None
        Estimated USD for the group (``None`` when not priced).
    hardware : bool
        Whether the backend is a quantum computer.
    """

    backend: str
    eligible: bool
    reasons: tuple[str, ...]
    derivative_method: str | None
    seconds: float | None
    precision: str
    cost: float | None = None
    hardware: bool = False


@dataclass(frozen=True)
class RoutingContext:
    """What besides the workload decides a route: purpose, prices, live status.

    Attributes
    ----------
    purpose : str or None
        Purpose of the call (backends whose ``use_for`` lacks it are not eligible);
        ``None`` ignores ``use_for``.
    costs : Mapping[str, float]
        Estimated USD of the group per priced backend.
    unavailable : Mapping[str, str]
        Backends that must not be used now, with the reason (status, queue too long).
    queue_seconds : Mapping[str, float]
        Reported average queue time per backend, added to its time estimate.
    chain : Mapping[str, int]
        Position of each backend in the configured fallback chain; when not empty,
        only these backends are fallbacks, in this order.
    warm : frozenset[str]
        Backends that ran the forward pass of the circuits whose derivatives are asked
        for; those that keep forward states skip it (estimates without the forward).
    then : {None, "vjp", "jacobian"}
        For a forward pass: the derivative that the caller asked for after its last
        forward pass of these circuits (a training loop). A forward pass is then
        ranked by the time of both: its own, plus the derivative's on the same backend
        if that one keeps forward states, or else on the fastest backend for it.
    """

    purpose: str | None = None
    costs: Mapping[str, float] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    queue_seconds: Mapping[str, float] = field(default_factory=dict)
    chain: Mapping[str, int] = field(default_factory=dict)
    warm: frozenset[str] = frozenset()
    then: str | None = None


@dataclass(frozen=True)
class RoutingDecision:
    """The backend chosen for one workload, with every candidate considered.

    Attributes
    ----------
    backend : str
        The chosen backend.
    derivative_method : str or None
        How it computes derivatives for this workload.
    reason : str
        Why it was chosen, in words.
    candidates : tuple[CandidateEstimate, ...]
        All candidates, the eligible ones first in the policy's order.
    features : WorkloadFeatures
        The workload the decision is about.
    policy : str
        Name of the policy that decided.
    order : tuple[str, ...]
        The chosen backend and its fallbacks, when a fallback chain sets them.
    """

    backend: str
    derivative_method: str | None
    reason: str
    candidates: tuple[CandidateEstimate, ...]
    features: WorkloadFeatures
    policy: str
    order: tuple[str, ...] = ()

    @property
    def ranked(self) -> list[str]:
        """The chosen backend then its fallbacks, in order."""
        if self.order:
            return list(self.order)
        return [c.backend for c in self.candidates if c.eligible]


class RoutingPolicy(ABC):
    """Orders eligible candidates, best first."""

    #: Name used in configs (``routing_strategy``).
    name: str = ""

    @abstractmethod
    def rank(
        self, candidates: Sequence[CandidateEstimate], features: WorkloadFeatures
    ) -> list[CandidateEstimate]:
        """Eligible candidates, best first."""

    @abstractmethod
    def reason(self, chosen: CandidateEstimate, runner_up: CandidateEstimate | None) -> str:
        """Why ``chosen`` beat ``runner_up``, in words."""


class PerformancePolicy(RoutingPolicy):
    """Fastest estimated backend; near-ties go to the more precise one."""

    name = "performance"

    def rank(self, candidates, features):
        fastest = min(c.seconds for c in candidates)

        def key(c: CandidateEstimate):
            tied = c.seconds <= fastest * _TIE_RATIO
            return (not tied, c.precision != "double" if tied else 0, c.seconds)

        return sorted(candidates, key=key)

    def reason(self, chosen, runner_up):
        if runner_up is None:
            return f"only eligible backend (est. {format_seconds(chosen.seconds)})"
        slower, faster = (
            max(chosen.seconds, runner_up.seconds),
            min(chosen.seconds, runner_up.seconds),
        )
        if slower <= faster * _TIE_RATIO and chosen.precision != runner_up.precision:
            return (
                f"{chosen.precision} precision at about the same estimated time as "
                f"{runner_up.backend} ({format_seconds(chosen.seconds)} vs "
                f"{format_seconds(runner_up.seconds)})"
            )
        ratio = runner_up.seconds / chosen.seconds if chosen.seconds > 0 else float("inf")
        return (
            f"fastest: est. {format_seconds(chosen.seconds)}, {ratio:.1f}x ahead of "
            f"{runner_up.backend}"
        )


class CostOptimizedPolicy(RoutingPolicy):
    """Cheapest estimated backend; equal prices go to the fastest."""

    name = "cost_optimized"

    def rank(self, candidates, features):
        return sorted(candidates, key=lambda c: (round(c.cost or 0.0, 6), c.seconds))

    def reason(self, chosen, runner_up):
        price = format_usd(chosen.cost)
        if runner_up is None:
            return f"only eligible backend ({price}, est. {format_seconds(chosen.seconds)})"
        if (chosen.cost or 0.0) < (runner_up.cost or 0.0):
            return f"cheapest: {price} vs {format_usd(runner_up.cost)} on {runner_up.backend}"
        return (
            f"cheapest ({price}, as {runner_up.backend}) and faster: est. "
            f"{format_seconds(chosen.seconds)} vs {format_seconds(runner_up.seconds)}"
        )


class PrecisionPolicy(RoutingPolicy):
    """Most faithful results: hardware where it is eligible (it is what a model will
    face; ``use_for`` keeps it to validation), then complex128 simulators, then
    complex64 ones; the fastest within each tier."""

    name = "precision"

    def rank(self, candidates, features):
        return sorted(
            candidates, key=lambda c: (not c.hardware, c.precision != "double", c.seconds)
        )

    def reason(self, chosen, runner_up):
        tier = "hardware" if chosen.hardware else f"{chosen.precision} precision"
        if runner_up is None:
            return f"only eligible backend ({tier})"
        return f"most precise: {tier}, ahead of {runner_up.backend}"


POLICIES: dict[str, type[RoutingPolicy]] = {
    p.name: p for p in (PerformancePolicy, CostOptimizedPolicy, PrecisionPolicy)
}


def get_policy(name: str) -> RoutingPolicy:
    """The routing policy registered under ``name``.

    Raises
    ------
    ConfigError
        If no policy has that name.
    """
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(
            f"unknown routing_strategy {name!r}; choose one of {sorted(POLICIES)}"
        ) from None


def estimate_candidates(
    features: WorkloadFeatures,
    backends: Sequence[BackendSpec],
    precision: str,
    context: RoutingContext | None = None,
) -> list[CandidateEstimate]:
    """Eligibility, derivative method, estimated time and cost of every backend."""
    context = context or RoutingContext()
    estimates = []
    followup = None
    if features.derivative is None and context.then is not None:
        followup = _followup_seconds(
            replace(features, derivative=context.then), backends, precision, context
        )
    for spec in backends:
        caps = spec.capabilities
        reasons = caps.missing(features, precision)
        purpose = context.purpose
        if purpose is not None and spec.use_for is not None and purpose not in spec.use_for:
            reasons.append(f"use_for {sorted(spec.use_for)}, not {purpose}")
        if spec.name in context.unavailable:
            reasons.append(context.unavailable[spec.name])
        method = caps.derivative_method(features) if features.derivative else None
        if features.backprop:
            method = "backprop"
        seconds = None
        if not reasons:
            warm = spec.name in context.warm and caps.keeps_forward_states
            seconds = spec.time_model.estimate(features, method, warm=warm)
            seconds += context.queue_seconds.get(spec.name, 0.0)
            if followup is not None:
                best_elsewhere, here = followup
                seconds += min(best_elsewhere, here.get(spec.name, float("inf")))
        estimates.append(
            CandidateEstimate(
                backend=spec.name,
                eligible=not reasons,
                reasons=tuple(reasons),
                derivative_method=method,
                seconds=seconds,
                precision=caps.precision,
                cost=context.costs.get(spec.name, 0.0 if spec.pricing.is_free else None),
                hardware=spec.hardware,
            )
        )
    return estimates


def _followup_seconds(derivative, backends, precision, context):
    """The expected derivative after a forward pass: the fastest estimate anywhere
    (forward included), and per backend that keeps forward states its warm estimate."""
    cold = estimate_candidates(derivative, backends, precision, replace(context, warm=frozenset()))
    best = min((c.seconds for c in cold if c.eligible and c.seconds is not None), default=0.0)
    keepers = {s.name for s in backends if s.capabilities.keeps_forward_states}
    warm = estimate_candidates(derivative, backends, precision, replace(context, warm=keepers))
    return best, {c.backend: c.seconds for c in warm if c.eligible and c.backend in keepers}


def route(
    features: WorkloadFeatures,
    backends: Sequence[BackendSpec],
    policy: RoutingPolicy,
    precision: str = "single",
    context: RoutingContext | None = None,
) -> RoutingDecision:
    """Choose a backend for a workload.

    Parameters
    ----------
    features : WorkloadFeatures
        The workload.
    backends : Sequence[BackendSpec]
        Candidates.
    policy : RoutingPolicy
        Orders the eligible candidates.
    precision : {"single", "double"}
        Least precision accepted.
    context : RoutingContext, optional
        Purpose, prices, live status and fallback chain.

    Raises
    ------
    UnsupportedCircuitError
        If no candidate can run the workload; the message lists each candidate's reasons.
    """
    context = context or RoutingContext()
    estimates = estimate_candidates(features, backends, precision, context)
    eligible = [c for c in estimates if c.eligible]
    # the fallback chain runs work whatever its members' use_for: a fallback is a fallback
    chain = [b for b in backends if b.name in context.chain]
    relaxed = estimate_candidates(features, chain, precision, replace(context, purpose=None))
    relaxed = [c for c in relaxed if c.eligible]
    note = ""
    if not eligible and relaxed:
        eligible = relaxed
        serving = [
            c
            for c, spec in zip(estimates, backends)
            if spec.use_for is None or context.purpose in spec.use_for
        ]
        names = {c.backend for c in relaxed}
        estimates = relaxed + [c for c in estimates if c.backend not in names]
        note = purpose_note(context.purpose, serving, context.unavailable)
    if not eligible:
        channel_sets = [b.capabilities.channels for b in backends]
        fix = noise_fix(features, channel_sets) or _method_fix(features)
        raise UnsupportedCircuitError(no_backend_message(estimates, context.unavailable, fix))
    if context.then is not None and features.derivative is None:
        note += f"with the {context.then} that follows: "
    ranked = policy.rank(eligible, features)
    chosen = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    others = [c for c in estimates if not c.eligible]
    order: tuple[str, ...] = ()
    if context.chain:
        fallbacks = [c for c in policy.rank(relaxed, features) if c.backend != chosen.backend]
        fallbacks.sort(key=lambda c: context.chain[c.backend])  # stable: policy order within
        order = (chosen.backend, *(c.backend for c in fallbacks))
    return RoutingDecision(
        backend=chosen.backend,
        derivative_method=chosen.derivative_method,
        reason=note + policy.reason(chosen, runner_up),
        candidates=tuple(ranked + others),
        features=features,
        policy=policy.name,
        order=order,
    )


def _method_fix(features: WorkloadFeatures) -> str | None:
    """What to do when the differentiation method, not the circuit, rules every
    backend out; ``None`` when it does not."""
    if features.backprop:
        return (
            "backpropagation runs on default.qubit: add it to the backends, or use "
            "diff_method='adjoint' or 'parameter-shift'"
        )
    if features.differenced:
        return (
            "finite differences need a complex128 backend: add one (e.g. lightning.qubit), "
            "or use diff_method='parameter-shift'"
        )
    return None


def format_usd(usd: float | None) -> str:
    """USD with cents, ``"-"`` when not priced."""
    return "-" if usd is None else f"{usd:.2f} USD"


def format_seconds(seconds: float) -> str:
    """Seconds in the unit a person reads best (s, ms or us)."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"
