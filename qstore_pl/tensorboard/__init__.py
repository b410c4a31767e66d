"""Router metrics and their TensorBoard logging: a Keras 3 callback and a helper for
hand-written loops (torch, JAX), both writing event files without TensorFlow.

:mod:`~qstore_pl.tensorboard.metrics` (``RouterMetrics``, ``StepTimer``) needs no ML
framework and no ``tensorboard`` package; the writers are imported on first use, so
metrics sent elsewhere (MLflow, a CSV file) do not need tensorboard and torch-only
code does not pay for Keras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qstore_pl.tensorboard.metrics import RouterMetrics, StepTimer

if TYPE_CHECKING:
    from qstore_pl.tensorboard.event_writer import EventWriter
    from qstore_pl.tensorboard.keras_callback import RouterTensorBoard
    from qstore_pl.tensorboard.torch_logger import log_router_metrics

__all__ = ["EventWriter", "RouterMetrics", "RouterTensorBoard", "StepTimer", "log_router_metrics"]

_ON_FIRST_USE = {
    "EventWriter": "event_writer",
    "RouterTensorBoard": "keras_callback",
    "log_router_metrics": "torch_logger",
}


def __getattr__(name: str) -> Any:
    if name in _ON_FIRST_USE:
        module = importlib.import_module(f"{__name__}.{_ON_FIRST_USE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
