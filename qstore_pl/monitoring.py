"""Deprecated home of the router metrics, kept for one release.

``RouterMetrics``, ``StepTimer`` and ``difference`` moved beside the TensorBoard
logging that uses them, to :mod:`qstore_pl.tensorboard.metrics` (also importable from
:mod:`qstore_pl.tensorboard`). Names read from here warn and come from there.
"""

from __future__ import annotations

import warnings
from typing import Any

from qstore_pl.tensorboard import metrics as _metrics

_MOVED = ("RouterMetrics", "StepTimer", "difference", "PREFIX", "TOTAL")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"qstore_pl.monitoring is deprecated: import {name} from "
            "qstore_pl.tensorboard.metrics instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_MOVED)
