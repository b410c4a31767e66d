"""Exceptions raised by qstore_pl.

Every exception names the problem and, where there is one, the fix. They derive
from the standard exception a caller would naturally catch (``ValueError`` for bad
values, PennyLane's ``DeviceError`` for circuits a device cannot run), so existing
``except`` clauses keep working.
"""

from __future__ import annotations

from pennylane.exceptions import DeviceError

from qstore_pl.base_error import QstoreError as QstoreError


class ConfigError(QstoreError, ValueError):
    """A router configuration value is invalid."""


class UnknownBackendError(ConfigError, KeyError):
    """A configuration names a backend that does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class UnsupportedCircuitError(QstoreError, DeviceError):
    """No candidate backend can run a circuit (too wide, unknown gate or observable)."""


class InvalidParameterError(QstoreError, ValueError):
    """A circuit parameter is not a finite number (NaN or infinity)."""


class ParameterTypeError(InvalidParameterError, TypeError):
    """A circuit parameter is not a number (text, ``None``)."""


class BackendExecutionError(QstoreError, RuntimeError):
    """Every backend allowed for a circuit batch failed to execute it."""


class BudgetExceeded(QstoreError, RuntimeError):
    """Running a job would take spending over ``budget`` or ``max_cost_per_batch``.

    Attributes
    ----------
    backend : str
        Backend the job was meant for.
    estimate : float
        Estimated cost of the job (USD).
    spent : float
        Spent or reserved so far in the ledger (USD).
    limit : float
        The limit that would be passed (USD).
    kind : {"budget", "max_cost_per_batch"}
        Which limit.
    """

    def __init__(self, backend: str, estimate: float, spent: float, limit: float, kind: str):
        self.backend, self.estimate, self.spent, self.limit, self.kind = (
            backend,
            estimate,
            spent,
            limit,
            kind,
        )
        if kind == "max_cost_per_batch":
            detail = f"more than max_cost_per_batch = {limit:.2f} USD"
            fix = "raise max_cost_per_batch, use fewer shots or circuits per batch"
        else:
            detail = (
                f"over the budget of {limit:.2f} USD ({spent:.2f} USD spent or reserved, "
                f"{max(limit - spent, 0.0):.2f} USD left)"
            )
            fix = "raise the budget, use fewer shots"
        super().__init__(
            f"a job on {backend!r} would cost {estimate:.2f} USD (estimate), {detail}. "
            f"Nothing was submitted. To run it, {fix}, or set on_budget_exceeded='fallback' "
            "to run on the next backend of the fallback chain instead."
        )


class JobOutcomeUnknown(QstoreError, RuntimeError):
    """A priced job may have run (and be billed), but whether it did is unknown.

    Its charge stays reserved in the ledger, as unconfirmed, until
    ``qstore-pl ledger reconcile`` reads the provider's record of the job.

    Attributes
    ----------
    job_ids : tuple[str, ...]
        Provider job ids known so far.
    job_keys : tuple[str, ...]
        Idempotency keys of submissions whose job id never came back.
    """

    def __init__(self, message: str, job_ids: tuple = (), job_keys: tuple = ()):
        super().__init__(message)
        self.job_ids, self.job_keys = tuple(job_ids), tuple(job_keys)


class StateTooLargeError(UnsupportedCircuitError, MemoryError):
    """A state-vector simulation needs more memory than the machine has available."""
