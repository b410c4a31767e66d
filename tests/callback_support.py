"""A router callback that keeps every record it is handed, states included (shared
by the tests of the compiled paths)."""

from __future__ import annotations

from qstore_pl.callbacks import DeviceCallback


class Collector(DeviceCallback):
    """Keeps each :class:`~qstore_pl.callbacks.ExecutionRecord`, asking for states."""

    wants_states = True

    def __init__(self):
        self.records = []

    def on_execution(self, record):
        self.records.append(record)
