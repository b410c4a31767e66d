"""``gradient="auto"``: the cheapest gradient method that fits the run.

Exact simulation has the adjoint method (one backward sweep per sample, no extra
circuits). With shots it is unavailable, and the choice is between the
parameter-shift rule (unbiased, two circuits per trainable gate parameter per sample)
and SPSA (two circuits per sample, a noisier estimate): the parameter-shift rule when
it is free or within the budget, SPSA otherwise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qstore_pl.model.estimate import RunEstimator
from qstore_pl.model.quote import Quote


def quote_run(
    requested: str,
    budget: float | None,
    estimator: RunEstimator,
    x: np.ndarray,
    batch_size: int,
    x_validation: np.ndarray | None,
    epochs: int,
) -> Quote:
    """The quote of the run with the gradient method ``requested`` resolves to."""

    def quote(method: str, reason: str, **alternatives: float) -> Quote:
        return estimator.quote(x, batch_size, x_validation, epochs, method, reason, alternatives)

    if requested != "auto":
        return quote(requested, f"asked for: gradient={requested!r}")
    if estimator.shots is None:
        return quote(
            "adjoint", "exact simulation: one backward sweep per sample, no extra circuits"
        )
    priced, backend = estimator.is_priced(x[:batch_size])
    if not priced:
        return quote(
            "parameter-shift",
            f"{backend} charges nothing, and the parameter-shift rule gives unbiased "
            "gradients with shots (adjoint needs shots=None)",
        )
    shift = quote("parameter-shift", "")
    spsa = quote("spsa", "")
    per_sample = 2 * shift.trainable
    if budget is None or shift.total_usd <= budget:
        within = "no budget is set" if budget is None else f"within the budget of {budget:.2f} USD"
        reason = (
            f"{backend} is priced; the parameter-shift rule ({per_sample} circuits per "
            f"sample per step) costs {shift.total_usd:.2f} USD, {within}"
        )
        return replace(shift, gradient_reason=reason, alternatives={"spsa": spsa.total_usd})
    reason = (
        f"the parameter-shift rule ({per_sample} circuits per sample per step) would cost "
        f"{shift.total_usd:.2f} USD, over the budget of {budget:.2f} USD; SPSA needs 2 "
        f"and costs {spsa.total_usd:.2f} USD"
    )
    return replace(spsa, gradient_reason=reason, alternatives={"parameter-shift": shift.total_usd})
