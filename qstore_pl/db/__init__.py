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
imports :mod:`qstore_pl.devices`. Names load on first use.
"""

import importlib

#: Public names and the modules that define them, imported on first use: the command
#: line's parser lives in this package and must not load PennyLane to show its help.
_EXPORTS = {
    "CacheSavings": "cache",
    "ResultCache": "cache",
    "FilterError": "errors",
    "MetadataError": "errors",
    "NoStatesError": "errors",
    "StateDimensionError": "errors",
    "StateEncodingError": "errors",
    "StoreError": "errors",
    "StorePathError": "errors",
    "StoreUnavailableError": "errors",
    "default_store_path": "open",
    "open_store": "open",
    "RecorderStats": "recorder",
    "StateRecorder": "recorder",
    "Hit": "store",
    "StateStore": "store",
    "StoredState": "store",
    "StoreStats": "store",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"qstore_pl.db.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'qstore_pl.db' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
