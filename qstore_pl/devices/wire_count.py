"""The check every qstore device makes on ``wires`` given as a count."""

from __future__ import annotations

import numbers
from typing import Any


def check_wire_count(wires: Any, device_name: str) -> None:
    """Raise if ``wires`` is a count below one or not an integer count.

    PennyLane reads ``wires=0`` or ``wires=-3`` as "no wires" (``range(-3)`` is empty),
    so the mistake would only surface at the first circuit, as a wire error.

    Raises
    ------
    ValueError
        If ``wires`` is an integer below 1.
    TypeError
        If ``wires`` is a float or a bool where a count was meant.
    """
    if isinstance(wires, (bool, float)):  # a str is one wire label, as in PennyLane
        raise TypeError(
            f"{device_name}: wires={wires!r}; give the number of wires as an integer "
            "(wires=4), wire labels as a list (wires=['a', 'b']), or wires=None"
        )
    if isinstance(wires, numbers.Integral) and wires < 1:
        raise ValueError(
            f"{device_name}: wires={wires} but a device needs at least 1 wire; give the "
            "number of wires the circuits use (e.g. wires=4), or wires=None to let each "
            "circuit use its own"
        )
