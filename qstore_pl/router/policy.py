"""Routing policies: choose a backend for a workload.

A policy ranks the eligible candidates; :func:`route` applies the eligibility rules
that hold for every policy (capabilities, precision) and records the reasons, so any
decision can be explained afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from qstore_pl.exceptions import ConfigError, UnsupportedCircuitError
from qstore_pl.router.spec import BackendSpec
from qstore_pl.router.workload import WorkloadFeatures

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
    """

    backend: str
    eligible: bool
    reasons: tuple[str, ...]
    derivative_method: str | None
    seconds: float | None
    precision: str


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
    """

    backend: str
    derivative_method: str | None
    reason: str
    candidates: tuple[CandidateEstimate, ...]
    features: WorkloadFeatures
    policy: str

    @property
    def ranked(self) -> list[str]:
        """Eligible backends, best first (the fallback order)."""
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


POLICIES: dict[str, type[RoutingPolicy]] = {PerformancePolicy.name: PerformancePolicy}


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
    features: WorkloadFeatures, backends: Sequence[BackendSpec], precision: str
) -> list[CandidateEstimate]:
    """Eligibility, derivative method and estimated time of every backend."""
    estimates = []
    for spec in backends:
        caps = spec.capabilities
        reasons = caps.missing(features, precision)
        method = caps.derivative_method(features) if features.derivative else None
        seconds = None if reasons else spec.time_model.estimate(features, method)
        estimates.append(
            CandidateEstimate(
                backend=spec.name,
                eligible=not reasons,
                reasons=tuple(reasons),
                derivative_method=method,
                seconds=seconds,
                precision=caps.precision,
            )
        )
    return estimates


def route(
    features: WorkloadFeatures,
    backends: Sequence[BackendSpec],
    policy: RoutingPolicy,
    precision: str = "single",
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

    Raises
    ------
    UnsupportedCircuitError
        If no candidate can run the workload; the message lists each candidate's reasons.
    """
    estimates = estimate_candidates(features, backends, precision)
    eligible = [c for c in estimates if c.eligible]
    if not eligible:
        details = "; ".join(f"{c.backend}: {', '.join(c.reasons)}" for c in estimates)
        raise UnsupportedCircuitError(
            f"no backend can run this circuit ({details}). Reduce the circuit to what "
            "one of them supports, or configure a backend that supports it."
        )
    ranked = policy.rank(eligible, features)
    chosen = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    others = [c for c in estimates if not c.eligible]
    return RoutingDecision(
        backend=chosen.backend,
        derivative_method=chosen.derivative_method,
        reason=policy.reason(chosen, runner_up),
        candidates=tuple(ranked + others),
        features=features,
        policy=policy.name,
    )


def format_seconds(seconds: float) -> str:
    """Seconds in the unit a person reads best (s, ms or us)."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"
