"""``ResultCache``: never pay twice for the same execution.

A device callback: the router asks it before running a circuit and tells it after.
An entry is keyed by the circuit's structure, its exact parameter values (bit for
bit), its shots and the backend; it is stored in the state store's ``results``
namespace (fetched by id, never searched), so it survives restarts and is shared by
every process using the store.

What is cached: by default only results that were charged (``record.cost > 0``,
i.e. paid backends); ``simulators=True`` caches free results too. A hit returns the
stored result (for a shot-based run: the same samples, which is the point on paid
hardware) and counts the original charge as money saved: see :meth:`savings`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pennylane.tape import QuantumScript

from qstore_pl.callbacks import DeviceCallback, ExecutionRecord
from qstore_pl.db import result_codec
from qstore_pl.db.circuits import exact_digest, structure_hash
from qstore_pl.db.errors import StoreError
from qstore_pl.db.store import StateStore

logger = logging.getLogger(__name__)

_MAX_RESULT_CHARS = 30_000  # Pinecone metadata is limited to 40 KB per record


@dataclass(frozen=True)
class CacheSavings:
    """What a :class:`ResultCache` has saved.

    Attributes
    ----------
    hits : int
        Executions answered from the cache.
    misses : int
        Lookups that found nothing (the circuit ran).
    saved_usd : float
        Sum of the original charges of every hit.
    by_backend : dict[str, float]
        ``saved_usd`` per backend.
    hits_by_backend : dict[str, int]
        ``hits`` per backend.
    """

    hits: int = 0
    misses: int = 0
    saved_usd: float = 0.0
    by_backend: dict[str, float] = field(default_factory=dict)
    hits_by_backend: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"result cache: {self.hits} hits, {self.misses} misses, ${self.saved_usd:.2f} saved"


def cache_key(tape: QuantumScript, backend: str) -> str:
    """The id of a cache entry: a UUID derived from the exact execution."""
    return str(uuid.UUID(bytes=exact_digest(tape, backend)[:16]))


class ResultCache(DeviceCallback):
    """Exact-match cache of execution results in a :class:`StateStore`.

    Parameters
    ----------
    store : StateStore
        Where entries live.
    simulators : bool
        Also cache free (simulator) results. Off by default: simulating again is
        usually as fast as a lookup.

    Examples
    --------
    >>> cache = ResultCache(open_store())
    >>> dev = qml.device("qstore.router", wires=4, callbacks=[cache], router_config=...)
    >>> ...  # run, re-run: the second time nothing is charged
    >>> cache.savings().saved_usd
    """

    def __init__(self, store: StateStore, *, simulators: bool = False):
        self.store = store
        self.simulators = simulators
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        self._saved: dict[str, float] = {}
        self._misses = 0

    def __repr__(self) -> str:
        return f"ResultCache(store={self.store.location}, simulators={self.simulators})"

    @property
    def hits(self) -> int:
        """Executions answered from the cache."""
        return self.savings().hits

    @property
    def saved_usd(self) -> float:
        """Money not spent thanks to hits, in USD."""
        return self.savings().saved_usd

    def savings(self) -> CacheSavings:
        """Hits, misses and money saved, in total and per backend."""
        with self._lock:
            return CacheSavings(
                hits=sum(self._hits.values()),
                misses=self._misses,
                saved_usd=sum(self._saved.values()),
                by_backend=dict(self._saved),
                hits_by_backend=dict(self._hits),
            )

    def lookup(self, tape: QuantumScript, backend: str) -> Any | None:
        """The stored result of this exact execution, or ``None``."""
        try:
            entry = self.store.get_result(cache_key(tape, backend))
        except StoreError as err:  # an unreachable cache is a miss, never a failure
            logger.warning("result cache unavailable (%s); executing", err)
            entry = None
        with self._lock:
            if entry is None:
                self._misses += 1
                return None
            self._hits[backend] = self._hits.get(backend, 0) + 1
            self._saved[backend] = self._saved.get(backend, 0.0) + float(entry["cost"])
        return result_codec.loads(entry["result"])

    def on_execution(self, record: ExecutionRecord) -> None:
        """Store the result of an execution that is worth caching."""
        if record.task != "execute" or not (record.cost > 0 or self.simulators):
            return
        text = result_codec.dumps(record.result)
        if len(text) > _MAX_RESULT_CHARS:
            logger.warning("result of %d characters is too large to cache", len(text))
            return
        self.store.put_result(
            cache_key(record.tape, record.backend),
            {
                "result": text,
                "cost": float(record.cost),
                "backend": record.backend,
                "shots": record.shots,
                "circuit_hash": structure_hash(record.tape),
                "timestamp": time.time(),
            },
        )
