"""A Keras 3 callback that logs router metrics to TensorBoard under every backend."""

from __future__ import annotations

import os

import keras

from qstore_pl.tensorboard.event_writer import EventWriter
from qstore_pl.tensorboard.metrics import RouterMetrics, StepTimer, difference


class RouterTensorBoard(keras.callbacks.Callback):
    """Write, per epoch, what the router ran where, its cost and the time per step.

    At each epoch end it writes as TensorBoard scalars (step = epoch): the change of
    every :class:`~qstore_pl.tensorboard.metrics.RouterMetrics` tag during the epoch (circuits,
    shots, cost and seconds per backend; validation circuits included),
    ``time/steps``, ``time/step_seconds`` (mean wall time of a training batch, from
    the batch hooks) and ``time/train_seconds``, and, with ``include_logs``, Keras'
    epoch logs as ``epoch/<name>`` (loss, metrics, ``val_*``).

    Event files are written without TensorFlow's summary ops, so the callback works
    with ``KERAS_BACKEND`` ``tensorflow``, ``jax`` and ``torch`` alike.

    Parameters
    ----------
    metrics : RouterMetrics
        Attached to the router the model's quantum layers run on.
    log_dir : str or PathLike
        Folder of the run; point ``tensorboard --logdir`` at it or a parent.
    include_logs : bool
        Also write Keras' epoch logs.

    Attributes
    ----------
    written : list[dict[str, float]]
        The scalars written for each epoch, in order.

    Examples
    --------
    >>> metrics = RouterMetrics(dev)
    >>> model.fit(x, y, epochs=5, callbacks=[RouterTensorBoard(metrics, "logs/digits")])
    """

    def __init__(
        self, metrics: RouterMetrics, log_dir: str | os.PathLike, include_logs: bool = True
    ):
        super().__init__()
        if not callable(getattr(metrics, "snapshot", None)):
            raise TypeError(
                f"metrics must be a qstore_pl.tensorboard.RouterMetrics, got {metrics!r}; "
                "create one with RouterMetrics(dev) for the model's qstore.router device"
            )
        self.metrics = metrics
        self.log_dir = os.fspath(log_dir)
        self.include_logs = include_logs
        self.written: list[dict[str, float]] = []
        self._timer = StepTimer()
        self._before: dict[str, float] = {}
        self._writer: EventWriter | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._writer is None:  # created here so that building the callback writes nothing
            self._writer = EventWriter(self.log_dir)
        self._before = self.metrics.snapshot()  # circuits run before fit do not count
        self._timer.delta()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._timer.begin()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._timer.end()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = self.metrics.snapshot()
        scalars = difference(now, self._before)
        self._before = now
        scalars.update(self._timer.delta())
        if self.include_logs and logs:
            for name, value in logs.items():
                try:
                    scalars[f"epoch/{name}"] = float(value)
                except (TypeError, ValueError):
                    continue  # a non-scalar log entry (a learning-rate schedule object)
        assert self._writer is not None, "on_train_begin opens the writer"
        self._writer.add_scalars(scalars, int(epoch))
        self._writer.flush()
        self.written.append(scalars)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()
