"""The router's money side: prices, queue status, budget checks and the ledger.

The router asks this module three things for every group of circuits: what each
backend would charge for it (a :class:`Quote`, gate counts as submitted, native
compilation included), which backends are unavailable or queue too long right now,
and, around the execution, to reserve and then commit or release the charge in the
spending ledger (:mod:`qstore_pl.router.money.ledger`).

Result-cache savings: when a callback's ``lookup`` answers circuits of a group routed
to a priced backend, the circuits not submitted are recorded as ``saved`` and shown
in :meth:`~qstore_pl.router.device.RouterDevice.cost_report`; other code can record
savings with :meth:`Spending.record_saving`.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, replace

import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.devices.grouping import TapeGroup
from qstore_pl.devices.ionq.pricing import FREE, default_pricing, parse_pricing
from qstore_pl.devices.job_tags import BACKEND_TAG, CHARGE_TAG
from qstore_pl.exceptions import JobOutcomeUnknown
from qstore_pl.router.config import AUTO, RouterConfig
from qstore_pl.router.money.estimate import CostEstimate, CostLine
from qstore_pl.router.money.ledger import Ledger
from qstore_pl.router.money.report import CostReport
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.support.bounded_cache import BoundedCache

IONQ_DEVICE = "qstore.ionq"
_COUNTS_KEPT = 256  # structures whose gate counts are remembered


def apply_spending_settings(
    specs: Sequence[BackendSpec], config: RouterConfig
) -> list[BackendSpec]:
    """Specs with prices, purposes and queue limits from their config entries.

    Backends an ``auto`` entry expanded to take that entry's settings. IonQ backends
    are metered (recorded in the ledger) and default to the public prices of their
    target; local simulators are free.
    """
    entries = {e.name: e for e in config.backends}
    auto = next((e for e in config.backends if e.type == AUTO), None)
    out = []
    for spec in specs:
        entry = entries.get(spec.name, auto)
        metered = spec.device_name == IONQ_DEVICE
        target = str(spec.device_kwargs.get("target", "simulator")) if metered else None
        default = FREE
        if metered:
            default = default_pricing(target, bool(spec.device_kwargs.get("error_mitigation")))
        where = f"pricing of backend {spec.name!r}"
        out.append(
            replace(
                spec,
                pricing=parse_pricing(entry.pricing if entry else None, default, where),
                use_for=entry.use_for if entry else None,
                max_queue_seconds=entry.max_queue_seconds if entry else None,
                metered=metered,
                hardware=bool(target and target.startswith("qpu")),
            )
        )
    return out


def job_tags(spec: BackendSpec, execution: str) -> dict[str, str] | None:
    """Metadata the provider jobs of one charge carry, so that
    :meth:`~qstore_pl.router.money.ledger.Ledger.reconcile` can match them to the ledger."""
    if not spec.metered:
        return None
    return {CHARGE_TAG: execution, BACKEND_TAG: spec.name}


def chain_positions(config: RouterConfig, specs: Sequence[BackendSpec]) -> dict[str, int]:
    """Position in ``fallback_chain`` of every backend it names (``auto`` expanded)."""
    names = {s.name for s in specs}
    explicit = {e.name for e in config.backends if e.type != AUTO}
    positions: dict[str, int] = {}
    for i, name in enumerate(config.fallback_chain):
        if name in names:
            positions.setdefault(name, i)
        else:  # an auto entry: every backend it expanded to
            for spec in specs:
                if spec.name not in explicit:
                    positions.setdefault(spec.name, i)
    return positions


@dataclass(frozen=True)
class Quote:
    """The price of one group of circuits on one backend.

    Attributes
    ----------
    usd : float
        Estimated charge for the whole group as one job.
    circuits, shots : int
        Circuits in the job and shots per circuit.
    gates : tuple[int, int]
        (1q, 2q) gates per circuit as written.
    submitted_gates : tuple[int, int]
        (1q, 2q) gates per circuit as submitted (after native compilation, if any).
    """

    usd: float
    circuits: int
    shots: int
    gates: tuple[int, int]
    submitted_gates: tuple[int, int]


@dataclass
class Bill:
    """An open charge: the router sets ``cached`` (circuits a cache answered); the
    charge committed when the block ends is ``charged`` (USD)."""

    quote: Quote
    cached: int = 0
    charged: float = 0.0


class Spending:
    """Prices, statuses and the ledger for one router.

    Parameters
    ----------
    config : RouterConfig
        Limits, ledger path, fallback chain.
    specs : Sequence[BackendSpec]
        The router's backends (after :func:`apply_spending_settings`).
    """

    def __init__(self, config: RouterConfig, specs: Sequence[BackendSpec]):
        from qstore_pl.router.registry.ionq_status import StatusCache

        self.config = config
        self.specs = {s.name: s for s in specs}
        self.chain = chain_positions(config, specs)
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()
        self._counts: BoundedCache[Hashable, tuple[tuple[int, int], tuple[int, int]]] = (
            BoundedCache(_COUNTS_KEPT)
        )
        self._status = StatusCache()

    @property
    def active(self) -> bool:
        """Whether any backend is metered."""
        return any(s.metered for s in self.specs.values())

    @property
    def ledger(self) -> Ledger:
        """The spending ledger, opened on first use (so local-only routers write nothing)."""
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger(self.config.ledger)
            return self._ledger

    # ------------------------------------------------------------------ prices
    def quote(self, spec: BackendSpec, tapes: Sequence[QuantumScript], key: Hashable) -> Quote:
        """What running ``tapes`` (one structure, ``key``) as one job on ``spec`` costs."""
        gateset = "native" if spec.noise_model else spec.device_kwargs.get("gateset", "qis")
        cache_key = (key, gateset)
        gates, submitted = self._counts.get_or_build(
            cache_key, lambda: gate_counts(tapes[0], native=gateset == "native")
        )
        shots = tapes[0].shots.total_shots if tapes[0].shots else 0
        circuits = sum(t.batch_size or 1 for t in tapes)
        usd = spec.pricing.job_cost(circuits, shots, *submitted)
        return Quote(usd, circuits, shots, gates, submitted)

    def costs(self, tapes: Sequence[QuantumScript], key: Hashable) -> dict[str, float]:
        """Estimated USD per metered backend for one group."""
        if not tapes[0].shots:
            return {}  # IonQ needs shots: no metered backend is eligible anyway
        return {n: self.quote(s, tapes, key).usd for n, s in self.specs.items() if s.metered}

    def estimate(self, groups: Sequence[TapeGroup]) -> CostEstimate:
        """Forward and training-step prices on every metered backend and rehearsal, one
        line per backend and group of same-structure tapes (labelled ``name [i]`` when several)."""
        lines = []
        for i, group in enumerate(groups):
            for spec in self.specs.values():
                if not spec.metered and spec.noise_model is None:
                    continue  # a rehearsal is listed at its price, none, beside the QPU
                quote = self.quote(spec, group.tapes, group.key)
                native = spec.noise_model is not None
                native = native or spec.device_kwargs.get("gateset", "qis") == "native"
                lines.append(
                    CostLine(
                        backend=spec.name if len(groups) == 1 else f"{spec.name} [{i}]",
                        pricing=spec.pricing,
                        gates=quote.gates,
                        native_gates=quote.submitted_gates if native else None,
                        circuits=quote.circuits,
                        trainable=len(group.tapes[0].trainable_params),
                        shots=quote.shots,
                    )
                )
        return CostEstimate(tuple(lines))

    # -------------------------------------------------------------- conditions
    def conditions(self) -> tuple[dict[str, str], dict[str, float]]:
        """Reasons why metered backends are unusable now, and their queue seconds."""
        unavailable: dict[str, str] = {}
        queues: dict[str, float] = {}
        for name, spec in self.specs.items():
            if not spec.metered:
                continue
            kwargs = spec.device_kwargs
            statuses = self._status.get(kwargs.get("url"), kwargs.get("api_key"))
            status = statuses.get(str(kwargs.get("target", "simulator")))
            if status is None:
                continue  # unknown: try it, the fault handling takes over
            queues[name] = status.queue_seconds
            if not status.available:
                unavailable[name] = f"IonQ reports {status.status}" + (
                    " (degraded)" if status.degraded else ""
                )
            elif (
                spec.max_queue_seconds is not None and status.queue_seconds > spec.max_queue_seconds
            ):
                unavailable[name] = (
                    f"queue {status.queue_seconds:.0f} s > max_queue_seconds "
                    f"{spec.max_queue_seconds:.0f} s"
                )
        return unavailable, queues

    # ---------------------------------------------------------------- charging
    @contextlib.contextmanager
    def charge(
        self, spec: BackendSpec, quote: Quote | None, purpose: str, execution: str
    ) -> Iterator[Bill | None]:
        """Reserve ``quote`` before the block, commit the actual charge after it.

        A hardware rehearsal (``spec.noise_model``) is recorded after the block as a
        settled charge of 0 USD. The reservation is released if the block raises, except
        when the job may have run (:class:`~qstore_pl.exceptions.JobOutcomeUnknown`, a
        timeout): it may be billed, so it stays counted as unconfirmed until reconciled. Circuits a
        cache answered (``bill.cached``) are not charged and are recorded as saved.

        Raises
        ------
        BudgetExceeded
            Before the block runs, if the job would pass a limit.
        """
        if spec.noise_model is not None and quote is not None:  # a rehearsal: free, recorded
            yield None
            self.ledger.record_rehearsal(
                execution, spec.name, spec.noise_model, purpose, quote.circuits, quote.shots
            )
            return
        if not spec.metered or quote is None:
            yield None
            return
        ledger = self.ledger
        ledger.reserve(
            execution,
            spec.name,
            quote.usd,
            purpose=purpose,
            circuits=quote.circuits,
            shots=quote.shots,
            budget=self.config.budget,
            max_per_batch=self.config.max_cost_per_batch,
        )
        bill = Bill(quote)
        try:
            yield bill
        except (JobOutcomeUnknown, TimeoutError):
            ledger.mark_unconfirmed(execution, spec.name)
            raise
        except BaseException:
            ledger.release(execution, spec.name)
            raise
        ran = quote.circuits - bill.cached
        actual = spec.pricing.job_cost(ran, quote.shots, *quote.submitted_gates)
        ledger.commit(execution, spec.name, actual)
        bill.charged = actual
        if bill.cached:
            self.record_saving(spec.name, quote.usd - actual, purpose, bill.cached, quote.shots)

    def record_saving(
        self, backend: str, usd: float, purpose: str, circuits: int, shots: int
    ) -> None:
        """Record ``usd`` not spent on ``backend`` because a cache answered."""
        if usd > 0:
            self.ledger.record_saving(uuid.uuid4().hex, backend, usd, purpose, circuits, shots)

    def report(self) -> CostReport:
        """The ledger's totals with this router's budget."""
        return self.ledger.report(self.config.budget)


def gate_counts(tape: QuantumScript, native: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """(1q, 2q) gates per circuit as written and as submitted to IonQ.

    Measurement basis rotations count (IonQ runs them as gates); a broadcast tape
    counts as one of its circuits.
    """
    from qstore_pl.circuits.ionq_native import GateCounts, compile_native

    if tape.batch_size:
        tape = qml.transforms.broadcast_expand(tape)[0][0]
    [diagonal], _ = qml.transforms.diagonalize_measurements(tape)
    written = GateCounts.of(diagonal.operations)
    gates = (written.one_qubit, written.two_qubit)
    if not native:
        return gates, gates
    compiled = compile_native(diagonal.operations).counts
    return gates, (compiled.one_qubit, compiled.two_qubit)
