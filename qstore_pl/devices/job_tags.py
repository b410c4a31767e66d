"""The metadata a metered device puts on each provider job, so its charge can be found.

The router's spending ledger keys a charge by ``(execution, backend)``; a device that
submits to a billing provider (IonQ) tags the job with both, and reconciling the ledger
reads the tags back from the provider's job list. Defined here, below both, because the
device writes what the router reads.
"""

#: Job metadata naming the ledger row ``(execution, backend)`` a provider job belongs to.
CHARGE_TAG, BACKEND_TAG = "qstore_charge", "qstore_backend"
