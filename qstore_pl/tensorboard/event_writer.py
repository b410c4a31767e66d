"""Scalars into TensorBoard event files through the ``tensorboard`` package, without
TensorFlow.

The ``Event`` and ``Summary`` protocol buffers come from
:mod:`tensorboard.compat.proto` and the TFRecord framing with its checksums from
tensorboard's ``RecordWriter``. Its ``EventFileWriter`` (what
``torch.utils.tensorboard.SummaryWriter`` uses) is not: constructing one resolves
``tensorboard.compat.tf``, which imports TensorFlow whenever it is installed (4.6 to
5.6 s here, and Keras' jax and torch backends must not pay for it), and it keeps a
file and a thread open per writer. This writer keeps events in memory until
:meth:`EventWriter.flush`, then appends them to its file and closes it again.
"""

from __future__ import annotations

import io
import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from itertools import count
from pathlib import Path

try:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.record_writer import RecordWriter
except ImportError as err:  # pragma: no cover - the tensorboard extra is not installed
    raise ImportError(
        "qstore_pl.tensorboard writes event files with the tensorboard package; install "
        "it with: pip install 'qstore_pl[tensorboard]'"
    ) from err

FILE_VERSION = "brain.Event:2"
_serial = count()


class EventWriter:
    """Writes TensorBoard scalars into an event file in ``log_dir``.

    Has the ``add_scalar(tag, value, step)`` / ``flush()`` / ``close()`` methods of
    ``torch.utils.tensorboard.SummaryWriter``, so code can take either.

    Parameters
    ----------
    log_dir : str or PathLike
        Folder of the run (created if missing); one new event file per writer.
    """

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
            f".{os.getpid()}.{next(_serial)}"
        )
        self.path = self.log_dir / name
        first = Event(wall_time=time.time(), file_version=FILE_VERSION)
        self._pending: list[bytes] = [first.SerializeToString()]
        self._lock = threading.Lock()
        self.flush()

    def __repr__(self) -> str:
        return f"EventWriter({str(self.path)!r})"

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_scalar(
        self, tag: str, value: float, step: int = 0, wall_time: float | None = None
    ) -> None:
        """Queue one scalar (written on :meth:`flush`)."""
        self.add_scalars({tag: value}, step, wall_time)

    def add_scalars(
        self, scalars: Mapping[str, float], step: int = 0, wall_time: float | None = None
    ) -> None:
        """Queue several scalars of one step as one event.

        Raises
        ------
        ValueError
            If a value cannot be converted to a float, ``wall_time`` is not finite or
            ``step`` does not fit an int64.
        """
        values = []
        for tag, value in scalars.items():
            try:
                values.append(Summary.Value(tag=str(tag), simple_value=float(value)))
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"TensorBoard scalar {tag!r} must be a real number, got {value!r}"
                ) from err
        if not values:
            return
        wall = time.time() if wall_time is None else float(wall_time)
        if not math.isfinite(wall):
            raise ValueError(f"wall_time must be finite, got {wall_time!r}")
        try:
            event = Event(wall_time=wall, step=int(step), summary=Summary(value=values))
        except ValueError as err:  # protobuf's own message names no field
            raise ValueError(f"step must fit a signed 64-bit integer, got {step!r}") from err
        record = event.SerializeToString()  # the values as they are now
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        """Append what is queued to the event file (kept queued if writing fails)."""
        with self._lock:
            if not self._pending:
                return
            framed = io.BytesIO()
            records = RecordWriter(framed)
            for record in self._pending:
                records.write(record)
            with open(self.path, "ab") as f:
                f.write(framed.getvalue())
            self._pending = []

    def close(self) -> None:
        """Flush; the writer may still be used afterwards (it holds no file open)."""
        self.flush()
