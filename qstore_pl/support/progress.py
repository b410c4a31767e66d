"""Progress of long runs: circuits done out of circuits submitted, with an ETA.

A thin layer over tqdm. Work may be announced while earlier work is still running
(groups of one batch are submitted one after another), so the total grows with
:meth:`CircuitProgress.expect` and the ETA follows it.
"""

from __future__ import annotations

import threading
from typing import IO

from tqdm.auto import tqdm


class CircuitProgress:
    """A progress bar counting circuits.

    Parameters
    ----------
    enabled : bool
        Show the bar; a disabled one counts silently.
    desc : str
        Label in front of the bar.
    file : file-like, optional
        Where to draw it (default: standard error).
    """

    def __init__(self, enabled: bool = True, desc: str = "qstore circuits", file: IO | None = None):
        self._lock = threading.Lock()
        self._bar = tqdm(
            total=0,
            desc=desc,
            unit="circuit",
            disable=not enabled,
            file=file,
            leave=False,
            dynamic_ncols=True,
        )
        self.total = 0
        self.done = 0

    def expect(self, circuits: int) -> None:
        """Add ``circuits`` to the total."""
        with self._lock:
            self.total += circuits
            self._bar.total = self.total
            self._bar.refresh()

    def advance(self, circuits: int) -> None:
        """Count ``circuits`` as done."""
        with self._lock:
            self.done += circuits
            self._bar.update(circuits)

    def close(self) -> None:
        """Draw the final count, then remove the bar."""
        self._bar.refresh()  # updates closer together than tqdm's interval are not drawn
        self._bar.close()

    def __enter__(self) -> CircuitProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
