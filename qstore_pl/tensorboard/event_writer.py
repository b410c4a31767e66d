"""A dependency-free writer of TensorBoard event files (scalars only).

The ``tensorboard`` package is not a dependency of TensorFlow 2.21 any more, and
``torch.utils.tensorboard`` needs it, so a Keras callback that must work under every
Keras backend writes its files itself. The format is small and stable:

- a file named ``events.out.tfevents.<time>.<host>.<pid>.<n>`` (TensorBoard reads
  every file with ``tfevents`` in its name);
- TFRecord framing per record: little-endian uint64 length, masked CRC-32C of the
  length, the bytes, masked CRC-32C of the bytes;
- each record a serialised ``tensorflow.Event`` protocol buffer: ``wall_time``
  (field 1, double), ``step`` (2, int64), ``file_version`` (3, string) or ``summary``
  (5, a ``Summary`` whose ``value`` entries (1) carry ``tag`` (1, string) and
  ``simple_value`` (2, float)).

TensorBoard shows ``simple_value`` summaries as scalars. The file is opened for each
flush and closed again, so a writer holds no file handle between epochs.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import threading
import time
from collections.abc import Mapping
from itertools import count
from pathlib import Path

FILE_VERSION = b"brain.Event:2"
_MASK_DELTA = 0xA282EAD8
_serial = count()


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord files use."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", _masked_crc(length))
        + data
        + struct.pack("<I", _masked_crc(data))
    )


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 as protobuf encodes it (negative: ten bytes)
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: bytes = b"", summary: bytes = b""):
    out = bytes([1 << 3 | 1]) + struct.pack("<d", wall_time)  # wall_time: fixed64
    if step:
        out += _varint(2 << 3) + _varint(step)
    if file_version:
        out += _length_delimited(3, file_version)
    if summary:
        out += _length_delimited(5, summary)
    return out


def _scalar_summary(scalars: Mapping[str, float]) -> bytes:
    out = b""
    for tag, value in scalars.items():
        entry = _length_delimited(1, tag.encode()) + bytes([2 << 3 | 5]) + struct.pack("<f", value)
        out += _length_delimited(1, entry)
    return out


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
        self._pending: list[bytes] = [_record(_event(time.time(), 0, file_version=FILE_VERSION))]
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
            If a value cannot be converted to a float.
        """
        values = {}
        for tag, value in scalars.items():
            try:
                values[str(tag)] = float(value)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"TensorBoard scalar {tag!r} must be a real number, got {value!r}"
                ) from err
        if not values:
            return
        wall = time.time() if wall_time is None else float(wall_time)
        if not math.isfinite(wall):
            raise ValueError(f"wall_time must be finite, got {wall_time!r}")
        record = _record(_event(wall, int(step), summary=_scalar_summary(values)))
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        """Append what is queued to the event file."""
        with self._lock:
            pending, self._pending = self._pending, []
            if pending:
                with open(self.path, "ab") as f:
                    f.write(b"".join(pending))

    def close(self) -> None:
        """Flush; the writer may still be used afterwards (it holds no file open)."""
        self.flush()
