"""The quantum-state database: record the states a model produces, search them by
fidelity, and never pay twice for the same execution.

>>> from qstore_pl.db import open_store, StateRecorder, ResultCache
>>> store = open_store()                 # embedded (Qdrant local mode), on disk
>>> recorder = StateRecorder(store)
>>> dev = qml.device("qstore.router", wires=6, callbacks=[recorder, ResultCache(store)])
>>> ...                                  # train
>>> recorder.flush()
>>> hits = store.query_similar(state, top_k=5, filter={"backend": "lightning.qubit"})

The router calls callbacks through :mod:`qstore_pl.callbacks`; this package never
imports :mod:`qstore_pl.devices`.
"""

from qstore_pl.db.cache import CacheSavings, ResultCache
from qstore_pl.db.errors import (
    FilterError,
    MetadataError,
    NoStatesError,
    StateDimensionError,
    StateEncodingError,
    StoreError,
    StoreUnavailableError,
)
from qstore_pl.db.open import default_store_path, open_store
from qstore_pl.db.recorder import RecorderStats, StateRecorder
from qstore_pl.db.store import Hit, StateStore, StoredState, StoreStats

__all__ = [
    "CacheSavings",
    "FilterError",
    "Hit",
    "MetadataError",
    "NoStatesError",
    "RecorderStats",
    "ResultCache",
    "StateDimensionError",
    "StateEncodingError",
    "StateRecorder",
    "StateStore",
    "StoreError",
    "StoreStats",
    "StoreUnavailableError",
    "StoredState",
    "default_store_path",
    "open_store",
]
