"""Build the executor a router config asks for.

Apart from :mod:`~qstore_pl.router.execution.executors` so that the Dask executor,
which builds on the serial one's pieces, is imported only here and only when asked
for (Dask is optional), and the two modules do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstore_pl.exceptions import ConfigError
from qstore_pl.router.execution.executors import EXECUTOR_KINDS, GroupExecutor, SerialExecutor


def make_executor(options: Mapping[str, Any]) -> GroupExecutor:
    """The executor described by ``config["executor"]`` (already validated)."""
    options = dict(options)
    kind = options.pop("kind", "serial")
    if kind == "serial":
        return SerialExecutor()
    if kind == "dask":
        from qstore_pl.router.execution.dask import DaskExecutor  # dask is optional

        return DaskExecutor(**options)
    raise ConfigError(f"unknown executor kind {kind!r}; available: {EXECUTOR_KINDS}")
