"""Read back the scalars a TensorBoard event file holds (for the TensorBoard and
notebook tests), with TensorFlow's own TFRecord reader, which checks every CRC."""

from __future__ import annotations

from pathlib import Path


def read_scalars(log_dir) -> dict[int, dict[str, float]]:
    """Every scalar in the event files of ``log_dir``, by step, read with TensorFlow."""
    import tensorflow as tf

    files = sorted(Path(log_dir).glob("events.out.tfevents.*"))
    assert files, f"no event file in {log_dir}"
    out: dict[int, dict[str, float]] = {}
    for path in files:
        for raw in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                out.setdefault(int(event.step), {})[value.tag] = value.simple_value
    return out
