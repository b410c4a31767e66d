"""Paid results kept beside a run's checkpoints, so a resumed run never pays twice.

A checkpoint is written after every epoch; a run interrupted mid-epoch restarts that
epoch from the checkpoint, with the same weights and the same batches, so it submits
the same circuits bit for bit. A :class:`~qstore_pl.db.cache.ResultCache` in the
checkpoint folder answers those from what was already paid for. The store is open
only while ``fit`` runs (the embedded store admits one client at a time), so a new
model in the same process can resume from it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pennylane.tape import QuantumScript

from qstore_pl.callbacks import DeviceCallback, ExecutionRecord

#: The result store's folder inside a ``checkpoint_dir``.
RESULTS_DIR = "results"


class CheckpointResultCache(DeviceCallback):
    """A router callback that caches paid results in ``checkpoint_dir/results``
    while :meth:`session` is open, and does nothing outside it.

    Parameters
    ----------
    checkpoint_dir : str or PathLike
        The run's checkpoint folder.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike):
        self.path = Path(checkpoint_dir) / RESULTS_DIR
        self._cache = None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Open the store for the block, close it after."""
        from qstore_pl.db import ResultCache, open_store

        store = open_store(path=self.path)
        self._cache = ResultCache(store)
        try:
            yield
        finally:
            self._cache = None
            store.close()

    def lookup(self, tape: QuantumScript, backend: str) -> Any | None:
        """The paid result of this exact execution, if one was stored."""
        cache = self._cache
        return None if cache is None else cache.lookup(tape, backend)

    def on_execution(self, record: ExecutionRecord) -> None:
        """Store a paid result."""
        cache = self._cache
        if cache is not None:
            cache.on_execution(record)
