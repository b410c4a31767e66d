"""Router metrics as flat scalars: what ran where, for how long, at what price.

:class:`RouterMetrics` is a router callback that adds up, per backend, the circuits
the ``qstore.router`` device ran, the shots they took, what they were charged and the
wall time they used. Its :meth:`~RouterMetrics.snapshot` is a flat ``{tag: float}``
dict, the shape every metrics logger takes (TensorBoard scalars, MLflow, W&B, a CSV
row), so the TensorBoard helpers in :mod:`qstore_pl.tensorboard` stay thin and nothing
here depends on an ML framework.

Tags (``<backend>`` is a router backend name, ``total`` sums over backends):

=========================================  ==============================================
``router/executions/<backend>``            circuits answered (broadcast batches count
                                           each; cache hits included)
``router/gradient_executions/<backend>``   of those, circuits run for derivatives
``router/shots/<backend>``                 shots taken (0 for analytic results)
``router/cost_usd/<backend>``              USD charged (this device's share of each job)
``router/seconds/<backend>``               wall time on the backend
``router/cache_hits/<backend>``            circuits a result cache answered (bound device)
``router/saved_usd/total``                 USD a result cache saved (bound, metered device)
``router/estimated_cost_usd/total``        what the router quoted: charged plus saved
=========================================  ==============================================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qstore_pl.callbacks import DeviceCallback, ExecutionRecord

PREFIX = "router"
TOTAL = "total"
_COUNTERS = ("executions", "gradient_executions", "shots", "cost_usd", "seconds")


@dataclass
class _Totals:
    executions: float = 0.0
    gradient_executions: float = 0.0
    shots: float = 0.0
    cost_usd: float = 0.0
    seconds: float = 0.0


class RouterMetrics(DeviceCallback):
    """Per-backend counters of a ``qstore.router`` device, as flat scalar tags.

    Give it to the router as a callback, or attach it to a router that exists::

        metrics = RouterMetrics()
        dev = qml.device("qstore.router", wires=4, callbacks=[metrics])
        metrics.bind(dev)          # optional: adds cache hits and savings

        dev = qml.device("qstore.router", wires=4)
        metrics = RouterMetrics(dev)   # the same, in one step

    Parameters
    ----------
    device : qstore.router device, optional
        Attach to this device at once (see :meth:`attach`).

    Notes
    -----
    Counters cover circuits that ran after the metrics were attached. The router calls
    callbacks from the threads that run its groups, so updates take a lock.
    Cache hits come from the bound devices' ``routing_report()``; savings from their
    ``cost_report()``, read only for devices with metered (priced) backends, so that a
    local-only router never opens a spending ledger. The ledger may be shared with
    other routers and processes, whose savings then show in ``saved_usd`` too.
    ``reset_routing_report()`` on a bound device also resets its cache-hit count;
    call :meth:`reset` after it.
    """

    def __init__(self, device: Any = None):
        self._lock = threading.Lock()
        self._backends: dict[str, _Totals] = {}
        self._devices: list[Any] = []
        self._baselines: dict[int, tuple[dict[str, int], float]] = {}
        self._last: dict[str, float] = {}
        if device is not None:
            self.attach(device)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._backends)) or "nothing yet"
        return f"<RouterMetrics backends=[{names}] devices={len(self._devices)}>"

    # ---------------------------------------------------------------- wiring
    def attach(self, device: Any) -> RouterMetrics:
        """Register as a callback of ``device`` and :meth:`bind` it; returns ``self``.

        The router takes its callbacks at construction and has no public method to add
        one later, so this appends to the tuple it keeps them in. Passing
        ``callbacks=[metrics]`` to ``qml.device`` and calling :meth:`bind` does the
        same through public API only.

        Raises
        ------
        TypeError
            If ``device`` is not a ``qstore.router`` device.
        """
        callbacks = getattr(device, "_callbacks", None)
        if not isinstance(callbacks, tuple) or not hasattr(device, "routing_report"):
            raise TypeError(
                f"RouterMetrics attaches to qstore.router devices, not {device!r}; create "
                'one with qml.device("qstore.router", wires=...) or pass '
                "callbacks=[metrics] to the device that should report to it"
            )
        if not any(cb is self for cb in callbacks):
            device._callbacks = (*callbacks, self)
        return self.bind(device)

    def bind(self, device: Any) -> RouterMetrics:
        """Read cache hits (and savings, for metered routers) from ``device`` too.

        ``device`` must already call this object back (``callbacks=[metrics]``);
        counting starts now. Returns ``self``.
        """
        if not hasattr(device, "routing_report"):
            raise TypeError(f"{device!r} has no routing_report(); bind a qstore.router device")
        if not any(d is device for d in self._devices):
            self._devices.append(device)
            self._baselines[id(device)] = (_cache_hits(device), _saved(device))
        return self

    # -------------------------------------------------------------- callback
    def on_execution(self, record: ExecutionRecord) -> None:
        """Count one circuit (a broadcast tape counts as its batch size)."""
        circuits = record.tape.batch_size or 1
        with self._lock:
            totals = self._backends.setdefault(record.backend, _Totals())
            totals.executions += circuits
            if record.task != "execute":
                totals.gradient_executions += circuits
            totals.shots += (record.shots or 0) * circuits
            totals.cost_usd += record.cost
            totals.seconds += record.seconds

    # --------------------------------------------------------------- reading
    def snapshot(self) -> dict[str, float]:
        """Cumulative counters since attaching, as ``{"router/<what>/<backend>": value}``.

        Every counter also has a ``total`` over backends, so a tag exists (as 0.0)
        before anything has run.
        """
        with self._lock:
            backends = {name: _Totals(**vars(t)) for name, t in self._backends.items()}
        out: dict[str, float] = {}
        for counter in _COUNTERS:
            out[f"{PREFIX}/{counter}/{TOTAL}"] = 0.0
        for name, totals in sorted(backends.items()):
            for counter in _COUNTERS:
                value = float(getattr(totals, counter))
                out[f"{PREFIX}/{counter}/{name}"] = value
                out[f"{PREFIX}/{counter}/{TOTAL}"] += value
        if self._devices:
            hits: dict[str, float] = {}
            saved = 0.0
            for device in self._devices:
                base_hits, base_saved = self._baselines[id(device)]
                for name, n in _cache_hits(device).items():
                    hits[name] = hits.get(name, 0.0) + n - base_hits.get(name, 0)
                saved += _saved(device) - base_saved
            out[f"{PREFIX}/cache_hits/{TOTAL}"] = sum(hits.values())
            for name, count in sorted(hits.items()):
                out[f"{PREFIX}/cache_hits/{name}"] = count
            out[f"{PREFIX}/saved_usd/{TOTAL}"] = saved
            charged = out[f"{PREFIX}/cost_usd/{TOTAL}"]
            # the router reserves its quote and charges it less what a cache answered
            out[f"{PREFIX}/estimated_cost_usd/{TOTAL}"] = charged + saved
        return out

    def delta(self) -> dict[str, float]:
        """What changed since the previous call (since attaching, the first time).

        Meant for per-epoch numbers. Callers that need their own reference point (two
        loggers on one metrics object) should keep a :meth:`snapshot` and use
        :func:`difference` instead.
        """
        now = self.snapshot()
        with self._lock:
            before, self._last = self._last, now
        return difference(now, before)

    def reset(self) -> None:
        """Forget all counts; bound devices count from now."""
        with self._lock:
            self._backends.clear()
            self._last = {}
        for device in self._devices:
            self._baselines[id(device)] = (_cache_hits(device), _saved(device))


def difference(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """``now - before`` tag by tag (tags missing from ``before`` count from 0)."""
    return {tag: value - before.get(tag, 0.0) for tag, value in now.items()}


class StepTimer:
    """Wall time of training steps, for the "time per step" scalars.

    Use :meth:`begin` / :meth:`end` around each step (what Keras' batch hooks do) or
    the :meth:`step` context manager in a torch loop; :meth:`delta` gives the steps and
    mean seconds per step since its previous call.
    """

    def __init__(self):
        self._start: float | None = None
        self._steps = 0
        self._seconds = 0.0

    def begin(self) -> None:
        """Mark the start of a step."""
        self._start = time.perf_counter()

    def end(self) -> None:
        """Mark the end of the step begun last; an end without a begin is ignored."""
        if self._start is None:
            return
        self._seconds += time.perf_counter() - self._start
        self._steps += 1
        self._start = None

    @contextmanager
    def step(self) -> Iterator[None]:
        """Time the enclosed block as one step."""
        self.begin()
        try:
            yield
        finally:
            self.end()

    def delta(self, prefix: str = "time") -> dict[str, float]:
        """``{prefix/steps, prefix/step_seconds, prefix/train_seconds}`` since the last
        call (mean seconds per step; 0.0 when no step ran), then start counting anew."""
        steps, seconds = self._steps, self._seconds
        self._steps, self._seconds = 0, 0.0
        mean = seconds / steps if steps else 0.0
        return {
            f"{prefix}/steps": float(steps),
            f"{prefix}/step_seconds": mean,
            f"{prefix}/train_seconds": seconds,
        }


def _cache_hits(device: Any) -> dict[str, int]:
    report = device.routing_report()
    return {name: totals.cached for name, totals in report.totals.items()}


def _saved(device: Any) -> float:
    if not any(getattr(spec, "metered", False) for spec in getattr(device, "backends", ())):
        return 0.0  # no priced backend: do not open (and create) a spending ledger
    return float(device.cost_report().saved)
