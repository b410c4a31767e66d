"""How wide a simulation this machine's memory allows, for the backends' capabilities."""

from __future__ import annotations

import math
import os


def max_wires_for_memory(bytes_per_amplitude: int, fraction: float = 0.5) -> int:
    """Widest state vector that fits in ``fraction`` of this machine's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 2**30
    return int(math.log2(memory * fraction / bytes_per_amplitude))
