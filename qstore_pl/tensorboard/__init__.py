"""TensorBoard logging of router metrics: a Keras 3 callback and a helper for
hand-written loops (torch, JAX), both writing event files without TensorFlow.

``RouterTensorBoard`` imports Keras on first use, so torch-only code does not pay
for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qstore_pl.monitoring import RouterMetrics, StepTimer
from qstore_pl.tensorboard.event_writer import EventWriter
from qstore_pl.tensorboard.torch_logger import log_router_metrics

if TYPE_CHECKING:
    from qstore_pl.tensorboard.keras_callback import RouterTensorBoard

__all__ = ["EventWriter", "RouterMetrics", "RouterTensorBoard", "StepTimer", "log_router_metrics"]


def __getattr__(name: str):
    if name == "RouterTensorBoard":
        from qstore_pl.tensorboard.keras_callback import RouterTensorBoard

        return RouterTensorBoard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
