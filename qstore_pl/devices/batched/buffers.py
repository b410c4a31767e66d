"""Large arrays for the kernels: fresh ones, and ones a device keeps from call to call.

A training loop asks for the same large arrays every step: at 20 qubits a batch of 32
complex64 states is 256 MB and the backward sweep's work planes 80 MB. Allocated
afresh, each is mapped and faulted in again on every step, which cost 0.2-0.4 s of
system time per 20-qubit W1 step. :class:`Buffers` keeps them and hands one out again
once nothing refers to it any more (no array, view or tensor made from it).

Fresh large buffers do not ask for huge pages. numpy does from 4 MiB, and on the 2-core
virtual machine this project measures on, first touching 256 MB in huge pages cost
0.1-3.3 s of system time from run to run, against 0.3-0.4 s in small pages: the first
call of a 20-qubit W1 step spent 1.6-2.0 s of system time there, and 0.3-0.65 s in small
pages (``benchmarks/first_call.py``; 0.11-0.14 s populated when mapped, below). Once
kept, a buffer faults no more pages; the steps after the first ran as fast in small
pages as in huge ones, within this machine's noise (``benchmarks/bench_adjoint.py``, 20
qubits, 2026-12-07).

A fresh buffer is private memory whose pages are populated when it is mapped
(``MAP_POPULATE``, no ``MADV_HUGEPAGE``: the kernel does not stall compacting memory
for huge pages, and gave none here). Python's ``mmap`` maps shared memory by default,
which the buffers used before: 256 MB took 0.19-0.23 s to fault in page by page there,
0.13-0.18 s as private memory, and 0.08-0.12 s populated at once; a forked child (a
data loader's worker) no longer shares a parent's buffers either.
"""

from __future__ import annotations

import math
import mmap
import sys
import threading

import numpy as np

#: Below this many bytes a buffer comes from numpy and is not kept: small arrays cost
#: no page faults worth keeping memory for.
KEPT_MIN_BYTES = 1 << 22
#: Buffers a device keeps at most: a step's states, the previous step's (still held by
#: the autograd graph while the next forward pass runs) and the sweep's work planes,
#: with one to spare. The least recently used go first.
KEPT_MAX = 4

_CACHE_LINE = 64


def _unshared_item_refs() -> int:
    """``sys.getrefcount(kept[i])`` for an array only the list ``kept`` holds (views
    refer to the array itself, so each one adds to it). Measured, not assumed: how
    many references the call itself adds differs between Python versions."""
    kept = [np.empty(1)]
    return sys.getrefcount(kept[0])


#: References to a kept buffer when nothing outside :class:`Buffers` holds it.
_UNUSED_REFS = _unshared_item_refs()


def allocate(count: int, dtype) -> np.ndarray:
    """``count`` values of ``dtype`` starting on a cache line, contents undefined: from
    :data:`KEPT_MIN_BYTES` mapped privately with its pages populated, below from numpy
    (which aligns to 16 bytes only, and vector loads across two cache lines cost)."""
    dtype = np.dtype(dtype)
    nbytes = count * dtype.itemsize
    populate = getattr(mmap, "MAP_POPULATE", None)  # Linux only
    if nbytes < KEPT_MIN_BYTES or populate is None:
        raw = np.empty(count + _CACHE_LINE // dtype.itemsize, dtype)
        start = (-raw.ctypes.data % _CACHE_LINE) // dtype.itemsize
        return raw[start : start + count]
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=flags), dtype, count)  # page-aligned


class Buffers:
    """Large arrays kept for reuse: :meth:`empty` hands out one that nothing else holds.

    Thread-safe; a buffer is handed to one caller at a time, and is free again once
    every array viewing it is gone. At most :data:`KEPT_MAX` are kept.
    """

    def __init__(self) -> None:
        self._kept: list[np.ndarray] = []  # raw byte buffers, most recently used last
        self._lock = threading.Lock()

    def empty(self, shape: int | tuple[int, ...], dtype) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` on a cache line, contents undefined."""
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes < KEPT_MIN_BYTES:
            return allocate(count, dtype).reshape(shape)
        with self._lock:
            raw = self._take(nbytes)
            return raw[:nbytes].view(dtype).reshape(shape)

    def kept_free_bytes(self) -> int:
        """Bytes kept in buffers nothing holds now (free memory to a new allocation)."""
        with self._lock:
            return sum(raw.nbytes for raw in self._free())

    def _free(self) -> list[np.ndarray]:
        kept = self._kept
        return [kept[i] for i in range(len(kept)) if sys.getrefcount(kept[i]) == _UNUSED_REFS]

    def _take(self, nbytes: int) -> np.ndarray:
        kept = self._kept
        best = -1
        for i in range(len(kept)):
            if kept[i].nbytes >= nbytes and sys.getrefcount(kept[i]) == _UNUSED_REFS:
                if best < 0 or kept[i].nbytes < kept[best].nbytes:
                    best = i
        if best >= 0:
            raw = kept.pop(best)
        else:
            raw = allocate(nbytes, np.uint8)
            del kept[: max(0, len(kept) + 1 - KEPT_MAX)]  # the least recently used
        kept.append(raw)
        return raw
