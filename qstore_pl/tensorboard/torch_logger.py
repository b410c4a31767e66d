"""Router metrics into TensorBoard from a hand-written training loop (torch, JAX, ...).

Nothing here imports torch: any writer with ``add_scalar(tag, value, step)`` works
(``torch.utils.tensorboard.SummaryWriter``, tensorboardX, :class:`EventWriter`), and a
folder gets an :class:`EventWriter`, which does not import TensorFlow.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qstore_pl.tensorboard.event_writer import EventWriter
from qstore_pl.tensorboard.metrics import RouterMetrics, StepTimer

_writers: dict[Path, EventWriter] = {}  # one event file per folder and process
_writers_lock = threading.Lock()


def log_router_metrics(
    writer_or_logdir: Any,
    metrics: RouterMetrics,
    step: int,
    *,
    timer: StepTimer | None = None,
    extra: Mapping[str, float] | None = None,
    cumulative: bool = False,
) -> dict[str, float]:
    """Write the router's metrics for one epoch (or any interval) as TensorBoard scalars.

    Parameters
    ----------
    writer_or_logdir : SummaryWriter or str or PathLike
        A writer with ``add_scalar(tag, value, step)``, or the folder of the run (the
        same folder keeps appending to one event file in this process).
    metrics : RouterMetrics
        Attached to the router the loop trains through.
    step : int
        The x-axis value, usually the epoch.
    timer : StepTimer, optional
        Adds ``time/steps``, ``time/step_seconds`` (mean) and ``time/train_seconds``
        for the steps timed since the previous call.
    extra : Mapping[str, float], optional
        More scalars of this step (the loss, the accuracy).
    cumulative : bool
        Write the running totals (:meth:`RouterMetrics.snapshot`) instead of what
        changed since the previous :meth:`RouterMetrics.delta`.

    Returns
    -------
    dict[str, float]
        The scalars written.

    Examples
    --------
    >>> metrics = RouterMetrics(dev)
    >>> timer = StepTimer()
    >>> for epoch in range(epochs):
    ...     for x, y in loader:
    ...         with timer.step():
    ...             train_step(x, y)
    ...     log_router_metrics("runs/exp1", metrics, epoch, timer=timer)
    """
    if not callable(getattr(metrics, "snapshot", None)):
        raise TypeError(
            f"metrics must be a qstore_pl.tensorboard.RouterMetrics, got {metrics!r}; create "
            "one with RouterMetrics(dev) for the qstore.router device the loop uses"
        )
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int (the epoch), got {step!r}")
    scalars = metrics.snapshot() if cumulative else metrics.delta()
    if timer is not None:
        scalars.update(timer.delta())
    if extra:
        scalars.update({str(k): float(v) for k, v in extra.items()})
    if isinstance(writer_or_logdir, (str, os.PathLike)):
        writer = _writer_for(writer_or_logdir)
        writer.add_scalars(scalars, step)
        writer.flush()
        return scalars
    if not callable(getattr(writer_or_logdir, "add_scalar", None)):
        raise TypeError(
            "writer_or_logdir must be a folder or a writer with add_scalar(tag, value, "
            f"step) such as torch.utils.tensorboard.SummaryWriter, got {writer_or_logdir!r}"
        )
    for tag, value in scalars.items():
        writer_or_logdir.add_scalar(tag, value, step)
    flush = getattr(writer_or_logdir, "flush", None)
    if callable(flush):
        flush()
    return scalars


def _writer_for(log_dir: str | os.PathLike) -> EventWriter:
    path = Path(log_dir).resolve()
    with _writers_lock:
        if path not in _writers:
            _writers[path] = EventWriter(path)
        return _writers[path]
