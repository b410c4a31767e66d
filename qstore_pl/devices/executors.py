"""Executors: how the router runs its routed groups.

The router hands every group to ``executor.map(fn, items)``. The serial executor runs
them here, in order; the scale-out work plugs a Dask executor into the same seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from qstore_pl.exceptions import ConfigError


class GroupExecutor(Protocol):
    """Runs a function over routed groups and returns the results in order."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]: ...


class SerialExecutor:
    """Runs every group in this process, one after the other."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return [fn(item) for item in items]

    def __repr__(self) -> str:
        return "SerialExecutor()"


def make_executor(options: Mapping[str, Any]) -> GroupExecutor:
    """The executor described by ``config["executor"]``."""
    kind = options.get("kind", "serial")
    if kind == "serial":
        return SerialExecutor()
    raise ConfigError(f"unknown executor kind {kind!r}; available: 'serial'")
