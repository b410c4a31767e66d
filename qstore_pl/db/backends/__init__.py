"""Vector-store backends: one module per store, all speaking :class:`VectorBackend`."""

from qstore_pl.db.backends.base import Match, Record, VectorBackend

__all__ = ["Match", "Record", "VectorBackend"]
