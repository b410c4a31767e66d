"""Executors: where the router's routed groups of circuits run.

The router calls ``executor.map(fn, jobs)`` over its structure groups; ``fn`` does the
local bookkeeping (fallback, result-cache lookups, logging, callbacks) and hands the
computation itself to ``executor.run(work)`` as a :class:`GroupWork`: plain, picklable
data (tapes, the backend's spec, the task) that any process can run. The serial
executor runs it here; :mod:`qstore_pl.router.execution.dask` fans it out over a Dask
cluster.

Backend devices are built once per process and kept in a :class:`BackendPool`, so a
worker builds a device the first time it sees a backend and reuses it after.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from pennylane.devices import MCMConfig
from pennylane.tape import QuantumScript

from qstore_pl.router.execution.adapter import Backend
from qstore_pl.router.execution.packing import pack, unpack
from qstore_pl.router.execution.task import Task
from qstore_pl.router.routing.spec import BackendSpec
from qstore_pl.support.bounded_cache import BoundedCache

EXECUTOR_KINDS = ("serial", "dask")


@dataclass(frozen=True)
class GroupWork:
    """One backend call for a group of same-structure circuits, as plain data.

    Attributes
    ----------
    owner : str
        Token of the executor (one per router device) whose backends run this work;
        a process keeps separate devices per owner, so seeded sampling stays
        reproducible per router.
    spec : BackendSpec
        The backend to run on.
    num_wires : int
        Width of the backend device.
    seed : int or None
        Seed for the backend device.
    task : Task
        What to run the tapes for (a member's string value is taken too).
    tapes : Sequence[QuantumScript]
        The circuits, prepared by the router.
    cotangents : Sequence or None
        One cotangent per tape, for VJP tasks.
    mcm_config : MCMConfig or None
        Mid-circuit measurement settings, for forward executions.
    method : str or None
        Derivative method (``"adjoint"`` or ``"parameter-shift"``) for derivative tasks.
    job_tags : Mapping[str, str] or None
        For a metered backend: metadata its provider jobs carry (the ledger charge
        they belong to, see :func:`qstore_pl.router.money.spending.job_tags`).
    """

    owner: str
    spec: BackendSpec
    num_wires: int
    seed: int | None
    task: Task
    tapes: Sequence[QuantumScript]
    cotangents: Sequence[Any] | None = None
    mcm_config: MCMConfig | None = None
    method: str | None = None
    job_tags: Mapping[str, str] | None = None

    @property
    def circuits(self) -> int:
        """Number of circuits, counting each entry of a parameter broadcast."""
        return sum(tape.batch_size or 1 for tape in self.tapes)

    def __reduce__(self):
        # tapes travel packed: one template and a table of parameters
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["tapes"] = pack(self.tapes)
        return _unpacked_work, (values,)

    def split(self, parts: int) -> list[GroupWork]:
        """The work as up to ``parts`` pieces of consecutive tapes, in order.

        Metered work stays whole: a provider bills per job (with a minimum charge per
        job), and the group was priced as one job.
        """
        if self.spec.metered:
            return [self]
        count = len(self.tapes)
        parts = max(1, min(parts, count))
        bounds = [round(i * count / parts) for i in range(parts + 1)]
        pieces = []
        for start, stop in itertools.pairwise(bounds):
            cotangents = self.cotangents[start:stop] if self.cotangents is not None else None
            pieces.append(replace(self, tapes=self.tapes[start:stop], cotangents=cotangents))
        return pieces


def _unpacked_work(values: dict[str, Any]) -> GroupWork:
    return GroupWork(**{**values, "tapes": unpack(values["tapes"])})


class BackendPool:
    """Backend devices of one process, built on first use and kept for reuse.

    Parameters
    ----------
    max_size : int, optional
        Devices kept; the least recently used one is dropped beyond that (workers
        serve many router devices over their life). ``None`` keeps all.
    """

    def __init__(self, max_size: int | None = None):
        self.max_size = max_size
        self._backends: BoundedCache[Hashable, Backend] = BoundedCache(max_size)

    def __len__(self) -> int:
        return len(self._backends)

    def get(self, work: GroupWork) -> Backend:
        """The backend device for ``work``, built if this process has none yet."""
        return self._backends.get_or_build(
            _pool_key(work), lambda: Backend(work.spec, work.num_wires, seed=work.seed)
        )

    def peek(self, work: GroupWork) -> Backend | None:
        """The backend device for ``work`` if this process has built it."""
        return self._backends.get(_pool_key(work))


def _pool_key(work: GroupWork) -> Hashable:
    spec = work.spec
    return (
        work.owner,
        spec.name,
        spec.device_name,
        repr(sorted(spec.device_kwargs.items())),
        work.num_wires,
        work.seed,
    )


def run_work(work: GroupWork, pool: BackendPool) -> list:
    """Run ``work`` on its backend from ``pool``: one result per tape, in order.

    For tasks :attr:`~Task.with_results` each entry is a ``(result, derivative)`` pair.
    """
    backend = pool.get(work)
    _tag_jobs(backend.device, work.job_tags)
    tapes = work.tapes
    task = Task(work.task)
    if task is Task.EXECUTE:
        return list(backend.execute(tapes, work.mcm_config))
    with_results = task.with_results
    assert work.method is not None, "a derivative task names its method"
    if task.derivative == "jacobian":
        out = backend.jacobian(tapes, work.method, with_results=with_results)
    else:
        assert work.cotangents is not None, "a vjp task carries its cotangents"
        out = backend.vjp(tapes, work.cotangents, work.method, with_results=with_results)
    return list(zip(*out)) if with_results else list(out)


def _tag_jobs(device, tags: Mapping[str, str] | None) -> None:
    """Hand the job metadata to a device that tags its provider jobs (``job_tags``)."""
    device = getattr(device, "target_device", device)  # a legacy device's facade
    if hasattr(device, "job_tags"):
        device.job_tags = dict(tags or {})


class GroupExecutor(Protocol):
    """Where a router's groups run."""

    #: Token naming this executor's backends in every process (see GroupWork.owner).
    owner: str

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(item) for item in items]``, possibly concurrently, in order."""
        ...

    def run(self, work: GroupWork) -> list:
        """The results of ``work``, one per tape, in order (see :func:`run_work`)."""
        ...


class SerialExecutor:
    """Runs every group in this process, one after the other."""

    def __init__(self):
        self.owner = uuid.uuid4().hex
        self._pool = BackendPool()

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return [fn(item) for item in items]

    def run(self, work: GroupWork) -> list:
        return run_work(work, self._pool)

    def kept_states(self, work: GroupWork) -> list | None:
        """The final states of ``work``'s tapes if its backend ran them last and kept
        them (see :meth:`Backend.kept_states`)."""
        backend = self._pool.peek(work)
        return backend.kept_states(work.tapes) if backend is not None else None

    def __repr__(self) -> str:
        return "SerialExecutor()"
