"""IonQ's own record of the jobs the router sent: what :meth:`Ledger.reconcile
<qstore_pl.router.money.ledger.Ledger.reconcile>` compares the ledger with."""

from __future__ import annotations

from collections.abc import Collection

from qstore_pl.devices.ionq.connection import api_key
from qstore_pl.devices.ionq.jobs import JobSession
from qstore_pl.devices.job_tags import BACKEND_TAG, CHARGE_TAG
from qstore_pl.router.money.ledger import Ledger, ProviderJob, Reconciliation
from qstore_pl.support.secret import Secret


def provider_jobs(
    url: str | None = None, key: str | Secret | None = None, request_timeout: float = 30.0
) -> list[ProviderJob]:
    """Every job on the IonQ server at ``url`` tagged with a ledger charge.

    Raises
    ------
    ConfigError
        Without an API key.
    JobOutcomeUnknown
        If the job list cannot be read (nothing is changed then).
    """
    session = JobSession(api_key(key).reveal(), url, request_timeout, retries=3, backoff=0.5)
    found = []
    for job in session.jobs():
        meta = job.get("metadata") or {}
        if CHARGE_TAG in meta and BACKEND_TAG in meta:
            found.append(
                ProviderJob(
                    execution=str(meta[CHARGE_TAG]),
                    backend=str(meta[BACKEND_TAG]),
                    status=str(job.get("status", "")).lower(),
                    usd=float(job.get("cost_usd") or 0.0),
                    estimate=float(job.get("estimated_cost_usd") or 0.0),
                )
            )
    return found


def reconcile_ionq(
    ledger: Ledger,
    url: str | None = None,
    key: str | Secret | None = None,
    backends: Collection[str] | None = None,
) -> Reconciliation:
    """Reconcile ``ledger`` with the job list of the IonQ server at ``url``.

    Parameters
    ----------
    ledger : Ledger
        The spending ledger to update.
    url : str, optional
        The IonQ server (default: ``$QSTORE_IONQ_URL``, else IonQ's cloud).
    key : str or Secret, optional
        The API key (default: from the environment).
    backends : Collection[str], optional
        Only these backends' charges (default: every backend).
    """
    return ledger.reconcile(provider_jobs(url, key), backends)
