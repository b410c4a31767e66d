"""A batched engine that cannot allocate its states (shared by the tests of the compiled
paths' fallback).

``qstore.batched`` is swapped, for one test, for a subclass whose engine calls ask
numpy for a state buffer no machine has: numpy raises its own ``MemoryError`` ("Unable
to allocate ... EiB"), as it does when memory runs out mid-training. The router builds
its backends, and the compiled doors their engines, from the same table
(:data:`~qstore_pl.router.registry.own.OWN_DEVICES`), so the QNode path's tapes meet
the same failing engine and fall back down the router's ranking.
"""

from __future__ import annotations

import numpy as np

from qstore_pl.devices.batched import BatchedDevice
from qstore_pl.router.registry.own import OWN_DEVICES

#: Wires of the state buffer asked for: 2**58 amplitudes, 4 EiB in complex128.
_IMPOSSIBLE_WIRES = 58


class UnallocatableBatched(BatchedDevice):
    """``qstore.batched`` whose every kernel call first allocates an impossible buffer,
    once :attr:`memory_gone` (class-wide, so that a test can take the memory away
    between a forward pass and its VJP)."""

    memory_gone = True

    def _allocate(self) -> None:
        if type(self).memory_gone:
            np.empty(2**_IMPOSSIBLE_WIRES, dtype=self.c_dtype)  # raises MemoryError

    def kernel_for(self, bound, backward=False):
        self._allocate()
        return super().kernel_for(bound, backward)

    def row_kernel(self):
        self._allocate()
        return super().row_kernel()


def engine_without_memory(monkeypatch, gone: bool = True) -> type[UnallocatableBatched]:
    """Build ``qstore.batched`` as :class:`UnallocatableBatched` for the rest of the test
    (routers made from now on); ``gone=False`` leaves its memory until the test sets
    ``memory_gone``."""
    monkeypatch.setitem(OWN_DEVICES, "qstore.batched", f"{__name__}:UnallocatableBatched")
    monkeypatch.setattr(UnallocatableBatched, "memory_gone", gone)
    return UnallocatableBatched
