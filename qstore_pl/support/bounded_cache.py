"""A dict that keeps at most so many entries: the one eviction rule of qstore's caches.

Devices and the router remember things per circuit structure (programs, gate plans,
preprocessing verdicts, what followed a forward pass); a long-running process meets
ever new structures, so each such memory is bounded. The least recently used entry
goes first: a training loop's few structures stay while one-off circuits pass through.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, ItemsView, ValuesView
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most ``max_size`` entries; storing one more forgets the least recently used.

    Reading an entry (``cache[key]``, :meth:`get`) or storing it marks it used; ``in``
    does not. Safe to share between threads.

    Parameters
    ----------
    max_size : int or None
        Entries kept; ``None`` keeps all.
    """

    def __init__(self, max_size: int | None):
        self.max_size = max_size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.RLock()

    def __getitem__(self, key: K) -> V:
        with self._lock:
            value = self._entries[key]
            self._entries.move_to_end(key)
            return value

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            return self[key] if key in self._entries else default

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            if self.max_size is not None:
                while len(self._entries) > self.max_size:
                    self._entries.popitem(last=False)

    def get_or_build(self, key: K, build: Callable[[], V]) -> V:
        """``cache[key]``, built with ``build()`` and stored on first use."""
        with self._lock:
            if key in self._entries:
                return self[key]
        value = build()  # outside the lock: building may take long or use the cache
        self[key] = value
        return value

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            return self._entries.pop(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def values(self) -> ValuesView[V]:
        return self._entries.values()

    def items(self) -> ItemsView[K, V]:
        return self._entries.items()

    def __repr__(self) -> str:
        return f"BoundedCache({len(self)}/{self.max_size} entries)"
