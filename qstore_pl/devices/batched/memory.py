"""Memory checks before a batch of state vectors is allocated.

Raising with the numbers beforehand beats numpy's ``MemoryError`` (or the machine
swapping) halfway through a simulation.
"""

from __future__ import annotations

import os

import numpy as np

from qstore_pl.exceptions import StateTooLargeError


def available_bytes() -> int:
    """Memory available to a new allocation now (``MemAvailable``; free pages elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def format_bytes(size: float) -> str:
    """``size`` in binary units, e.g. ``"16.0 TiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024 or unit == "EiB":
            return f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_states_fit(device: str, n: int, rows: int, dtype, kept: int = 0) -> None:
    """Raise :class:`StateTooLargeError` unless ``rows`` states of ``n`` wires fit in memory.

    Counts the states and the row kernel's working copies (three real arrays of a
    row, for each row in flight: one per core). ``kept``: bytes the device keeps in
    buffers nothing holds now (:meth:`.Buffers.kept_free_bytes`), free to it as well.
    """
    itemsize = np.dtype(dtype).itemsize
    in_flight = min(rows, os.cpu_count() or 1)
    needed = (rows + 1.5 * in_flight) * itemsize * 2.0**n
    available = available_bytes() + kept
    if needed <= available:
        return
    raise StateTooLargeError(
        f"{device} cannot simulate {n} wires: {rows} state(s) of 2**{n} "
        f"{np.dtype(dtype).name} amplitudes and the kernel's working copies need "
        f"{format_bytes(needed)}, and "
        f"{format_bytes(available)} of memory is available. Use fewer wires or a "
        "smaller batch, c_dtype=np.complex64 (half the memory) where that fits, or a "
        "simulator for wide circuits such as default.tensor (matrix product states)"
    )
