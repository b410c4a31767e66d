"""IonQ backend status and queue times (``GET /backends``), cached briefly."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from qstore_pl.devices.ionq.connection import api_key, api_url
from qstore_pl.support.secret import Secret


@dataclass(frozen=True)
class BackendStatus:
    """One IonQ backend as ``GET /backends`` reports it."""

    backend: str
    status: str
    degraded: bool
    qubits: int
    queue_seconds: float

    @property
    def available(self) -> bool:
        """Whether jobs sent now will run (status ``available``, not degraded)."""
        return self.status == "available" and not self.degraded


class StatusCache:
    """Backend statuses per server, fetched at most once per ``ttl`` seconds.

    A server that cannot be reached gives an empty answer (status unknown), so the
    router still tries the backend and its fault handling takes over.
    """

    def __init__(self, ttl: float = 30.0, timeout: float = 5.0):
        self.ttl, self.timeout = ttl, timeout
        self._cache: dict[str, tuple[float, dict[str, BackendStatus]]] = {}
        self._lock = threading.Lock()

    def get(self, url: str | None, key: str | Secret | None) -> dict[str, BackendStatus]:
        """Statuses by backend name (``"simulator"``, ``"qpu.aria-1"``, ...)."""
        root = api_url(url)
        with self._lock:
            hit = self._cache.get(root)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
        statuses = fetch_statuses(root, api_key(key), self.timeout)
        with self._lock:
            self._cache[root] = (time.monotonic(), statuses)
        return statuses


def fetch_statuses(root: str, key: Secret, timeout: float) -> dict[str, BackendStatus]:
    """``GET {root}/backends``; empty when the server cannot be reached."""
    try:
        response = requests.get(
            f"{root}/backends",
            headers={"Authorization": f"apiKey {key.reveal()}"},
            timeout=timeout,
        )
        response.raise_for_status()
        entries = response.json()
    except (requests.RequestException, ValueError):
        return {}
    return {
        e["backend"]: BackendStatus(
            backend=e["backend"],
            status=str(e.get("status", "unknown")),
            degraded=bool(e.get("degraded", False)),
            qubits=int(e.get("qubits", 0)),
            queue_seconds=float(e.get("average_queue_time", 0)) / 1000.0,
        )
        for e in entries
        if isinstance(e, dict) and "backend" in e
    }
