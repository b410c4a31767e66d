"""Errors of the state database; each names the problem and the fix.

They derive from :class:`~qstore_pl.exceptions.QstoreError` through
:mod:`qstore_pl.base_error`, which does not load PennyLane (the recorder's delivery
process raises them and starts without it).
"""

from __future__ import annotations

from qstore_pl.base_error import QstoreError


class StoreError(QstoreError, RuntimeError):
    """A vector store refused a request (bad request, wrong dimension, bad filter)."""


class StoreUnavailableError(StoreError, ConnectionError):
    """A vector store cannot be reached or is throttling; retrying later may succeed."""


class StorePathError(QstoreError, OSError):
    """The embedded store's directory cannot be used (a file, unwritable, cannot be created)."""


class StateEncodingError(QstoreError, ValueError):
    """A state or probability vector cannot be encoded (not normalised, wrong length)."""


class StateDimensionError(StateEncodingError):
    """A state is too wide for the store it is written to."""


class FilterError(QstoreError, ValueError):
    """A metadata filter uses an operator or value the stores do not support."""


class MetadataError(QstoreError, ValueError):
    """Metadata that not every store can hold (nested values, reserved keys)."""


class NoStatesError(QstoreError, LookupError):
    """The store holds no state of the kind and width a query asks about."""
