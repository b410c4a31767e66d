"""Why no backend (or no backend for the purpose) can take a workload, and what to do.

The advice follows from the reasons: a backend that is offline needs waiting or a
fallback, a backend without an analytic mode needs shots, a circuit too big for every
backend needs reducing. One generic remedy for all of them misleads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # policy.py imports this module
    from qstore_pl.router.routing.policy import CandidateEstimate

#: Reason prefixes written by ``BackendCapabilities.missing`` and ``estimate_candidates``.
_NEEDS_SHOTS = "needs shots"
_USE_FOR = "use_for "

_SHOTS_FIX = (
    "give the QNode shots (@qml.qnode(dev, shots=1000) or qml.set_shots(circuit, "
    "shots=1000)) to run on {names}"
)
_OFFLINE_FIX = "wait until {names} can take jobs again"
#: Added where nothing else ran the work.
_ADD_FALLBACK = {
    _SHOTS_FIX: ", or add a simulator for analytic circuits (e.g. 'auto') to 'backends'",
    _OFFLINE_FIX: (
        ", or add a fallback (e.g. a local simulator: 'auto' in 'backends' and 'fallback_chain')"
    ),
}
_PURPOSE_FIX = (
    "run the call under qstore_pl.purpose(...) with a purpose they serve, or widen their 'use_for'"
)
_CIRCUIT_FIX = (
    "reduce the circuit to what one of them supports, or configure a backend that supports it"
)


def no_backend_message(
    estimates: Sequence[CandidateEstimate],
    unavailable: Mapping[str, str],
    method_fix: str | None = None,
) -> str:
    """The message when no backend can run a workload: each one's reasons, then the fix.

    Parameters
    ----------
    estimates : Sequence[CandidateEstimate]
        Every candidate, none eligible.
    unavailable : Mapping[str, str]
        Backends unusable right now (offline, degraded, queue too long), with the reason.
    method_fix : str, optional
        The fix when the differentiation method rules every backend out; it wins.
    """
    fix = method_fix or _fix(estimates, unavailable)
    return f"no backend can run this circuit ({_reasons(estimates)}). To run it, {fix}."


def purpose_note(
    purpose: str | None,
    serving: Sequence[CandidateEstimate],
    unavailable: Mapping[str, str],
) -> str:
    """The start of a decision's reason when the fallback chain runs a workload because
    no backend for ``purpose`` could: names those backends and why, if there are any.

    Parameters
    ----------
    purpose : str or None
        The call's purpose.
    serving : Sequence[CandidateEstimate]
        The backends whose ``use_for`` includes ``purpose`` (all ineligible).
    unavailable : Mapping[str, str]
        Backends unusable right now, with the reason.
    """
    if not serving:
        return f"no backend has use_for {purpose}; fallback chain: "
    return (
        f"no backend for {purpose} can run this ({_reasons(serving)}; to use them, "
        f"{_fix(serving, unavailable, fallback_ran=True)}); fallback chain: "
    )


def _reasons(estimates: Sequence[CandidateEstimate]) -> str:
    """Each backend with the reasons it cannot take the workload."""
    return "; ".join(f"{c.backend}: {', '.join(c.reasons)}" for c in estimates)


def _fix(
    estimates: Sequence[CandidateEstimate],
    unavailable: Mapping[str, str],
    fallback_ran: bool = False,
) -> str:
    """What to do, for the reasons that stop the most telling backends; where nothing
    ran the work (``fallback_ran`` false), also how to have something run it."""
    offline = [c.backend for c in estimates if c.backend in unavailable]
    sampled = [c.backend for c in estimates if any(r.startswith(_NEEDS_SHOTS) for r in c.reasons)]
    if offline:
        fix, names = _OFFLINE_FIX, offline
    elif sampled:
        fix, names = _SHOTS_FIX, sampled
    elif all(any(r.startswith(_USE_FOR) for r in c.reasons) for c in estimates):
        return _PURPOSE_FIX
    else:
        return _CIRCUIT_FIX
    advice = fix.format(names=", ".join(names))
    return advice if fallback_ran else advice + _ADD_FALLBACK[fix]
