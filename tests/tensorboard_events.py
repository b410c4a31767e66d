"""Read back the scalars TensorBoard event files hold (for the TensorBoard and notebook
tests), with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path


def read_scalars(log_dir) -> dict[int, dict[str, float]]:
    """Every scalar in the event files of ``log_dir``, by step, read by TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    assert list(Path(log_dir).glob("events.out.tfevents.*")), f"no event file in {log_dir}"
    events = EventAccumulator(str(log_dir), size_guidance={SCALARS: 0})  # 0: keep all
    events.Reload()
    out: dict[int, dict[str, float]] = {}
    for tag in events.Tags()["scalars"]:
        for scalar in events.Scalars(tag):
            out.setdefault(scalar.step, {})[tag] = scalar.value
    return out
