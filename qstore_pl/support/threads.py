"""How many threads the simulators use, and how their idle threads wait.

A user's machine is rarely idle: a browser, a second training process, DDP ranks,
Dask workers. OpenMP runtimes (torch's, qsim's, lightning's and the one under numba's
``parallel=True`` kernels each ship their own libgomp) spin-wait between parallel
regions by default, so beside busy processes a thread team burns the cores the work
needs and waits for members the kernel has descheduled: a W1 step at 8 qubits went
from 10.9 ms to 124 ms beside two busy processes on two cores. Two measures:

- **Wait passively.** :func:`prefer_passive_waiting` (run when ``qstore_pl`` is
  imported) sets ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` unless the user
  set them. An OpenMP runtime reads them once, when it is loaded, so a runtime already
  in the process (torch's, when torch was imported first) keeps spinning; see
  :func:`report`. Nothing is printed: the decision is logged at INFO level.
- **Use only the free cores.** :func:`engine_threads` decides the threads of one
  simulator call from its size, the cores this process may use (affinity, cgroup
  quota), its share of them (``LOCAL_WORLD_SIZE`` DDP ranks, a Dask worker's task
  slots, ``OMP_NUM_THREADS``) and the other processes running right now (the kernel's
  count of runnable tasks less this process's own, read at most every
  :data:`LOAD_CHECK_SECONDS`). Small
  circuits run on one thread: waking a team costs more than the work.

torch's own thread count is never changed (it is the user's global setting). numba's
threading layer stays numba's default (TBB where installed, else OpenMP, which then
waits passively): its ``workqueue`` layer cannot serve two calling threads at once,
which the router's executors and Dask task threads do.

Environment variables
---------------------
``QSTORE_THREADS``
    ``auto`` (default) or a positive integer: threads for every simulator call large
    enough to run in parallel, whatever the load.
``QSTORE_PASSIVE_WAIT``
    ``1`` (default) or ``0``: ``0`` leaves ``OMP_WAIT_POLICY`` and ``KMP_BLOCKTIME``
    alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

THREADS_ENV = "QSTORE_THREADS"
PASSIVE_ENV = "QSTORE_PASSIVE_WAIT"
#: What passive waiting means to GNU (libgomp) and LLVM/Intel (libomp, libiomp) runtimes.
PASSIVE_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
#: Below this many amplitudes per call (rows x 2**wires) one thread does the work:
#: 32 rows at 10 qubits. Waking a team (~1 ms per call beside busy processes) costs
#: more than a W1 step's kernels take at 4-8 qubits.
PARALLEL_MIN_AMPLITUDES = 1 << 15
#: The load is re-read at most this often (a read costs ~0.1 ms with a few threads).
LOAD_CHECK_SECONDS = 0.5
_OPENMP_RUNTIMES = ("libgomp", "libiomp", "libomp")


@dataclass
class WaitPolicy:
    """What :func:`prefer_passive_waiting` found and did."""

    #: the variables qstore_pl set, and those the user had set (left alone)
    set_here: dict[str, str] = field(default_factory=dict)
    user_values: dict[str, str] = field(default_factory=dict)
    #: OpenMP runtimes loaded before qstore_pl: they read the variables earlier
    loaded_before: list[str] = field(default_factory=list)
    disabled: bool = False


_wait_policy = WaitPolicy()


def prefer_passive_waiting(environ: MutableMapping[str, str] = os.environ) -> WaitPolicy:
    """Make OpenMP runtimes loaded from now on sleep instead of spinning when idle.

    Sets every variable of :data:`PASSIVE_SETTINGS` the user has not set, unless
    ``QSTORE_PASSIVE_WAIT=0``. Called when ``qstore_pl`` is imported.

    Returns
    -------
    WaitPolicy
        What was set, what the user had set, and which runtimes were already loaded
        (those keep the policy they started with).
    """
    global _wait_policy
    policy = WaitPolicy(loaded_before=loaded_openmp_runtimes())
    if environ.get(PASSIVE_ENV, "1").strip() == "0":
        policy.disabled = True
    else:
        for name, value in PASSIVE_SETTINGS.items():
            if name in environ:
                policy.user_values[name] = environ[name]
            else:
                environ[name] = value
                policy.set_here[name] = value
    _wait_policy = policy
    if log.isEnabledFor(logging.INFO):
        log.info("%s", report())
    return policy


def loaded_openmp_runtimes() -> list[str]:
    """Paths of the OpenMP runtimes mapped into this process (Linux; else ``[]``)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if ".so" in line}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.basename(p).startswith(_OPENMP_RUNTIMES))


def report() -> str:
    """One paragraph: how threads wait and how many the simulators use now."""
    policy = _wait_policy
    if policy.disabled:
        wait = f"{PASSIVE_ENV}=0: OpenMP wait policy left to the runtimes (they spin)"
    else:
        parts = [f"{k}={v} (set by qstore_pl)" for k, v in policy.set_here.items()]
        parts += [f"{k}={v} (yours)" for k, v in policy.user_values.items()]
        wait = ", ".join(parts) or "no OpenMP settings"
    if policy.loaded_before:
        names = ", ".join(os.path.basename(p) for p in policy.loaded_before)
        wait += (
            f"; loaded before qstore_pl, so their thread teams still spin when idle: "
            f"{names} (harmless with one thread, e.g. OMP_NUM_THREADS=1; else import "
            "qstore_pl first or set OMP_WAIT_POLICY=passive before starting Python)"
        )
    budget = thread_budget()
    return (
        f"threads: {wait}. Simulator threads per call: {budget.describe()}; circuits "
        f"under {PARALLEL_MIN_AMPLITUDES} amplitudes run on one."
    )


# ------------------------------------------------------------------ thread counts
@dataclass(frozen=True)
class ThreadBudget:
    """The inputs of a thread decision (see :func:`decide_threads`)."""

    cores: int  # cores this process may run on (affinity, cgroup quota)
    busy: int  # other processes running now
    share: int  # processes or task slots that split the cores (DDP ranks, Dask slots)
    cap: int | None = None  # OMP_NUM_THREADS
    override: int | None = None  # QSTORE_THREADS

    def threads(self, amplitudes: int) -> int:
        return decide_threads(amplitudes, self)

    def describe(self) -> str:
        if self.override:
            return f"{self.override} ({THREADS_ENV})"
        cap = f", OMP_NUM_THREADS={self.cap}" if self.cap else ""
        return (
            f"{self.threads(PARALLEL_MIN_AMPLITUDES)} of {self.cores} cores "
            f"({self.busy} busy elsewhere, shared {self.share} ways{cap})"
        )


def decide_threads(amplitudes: int, budget: ThreadBudget) -> int:
    """Threads for one simulator call on ``amplitudes`` amplitudes (rows x 2**wires).

    One below :data:`PARALLEL_MIN_AMPLITUDES`; else ``QSTORE_THREADS`` if set; else
    this process's share of the cores, at most ``OMP_NUM_THREADS`` and at most the
    cores no other process is using now (at least one).
    """
    if amplitudes < PARALLEL_MIN_AMPLITUDES:
        return 1
    if budget.override:
        return budget.override
    share = max(1, budget.cores // max(1, budget.share))
    if budget.cap:
        share = min(share, budget.cap)
    return max(1, min(share, budget.cores - budget.busy))


def engine_threads(amplitudes: int) -> int:
    """Threads for one simulator call now (see :func:`decide_threads`)."""
    if amplitudes < PARALLEL_MIN_AMPLITUDES:  # without reading the load
        return 1
    return thread_budget().threads(amplitudes)


def thread_budget(refresh: bool = False) -> ThreadBudget:
    """The budget of this process now, recomputed at most every :data:`LOAD_CHECK_SECONDS`
    (or at once with ``refresh``)."""
    global _budget
    now = time.monotonic()
    cached = _budget
    if refresh or cached is None or now - cached[0] >= LOAD_CHECK_SECONDS:
        with _budget_lock:
            cores = usable_cores()
            budget = ThreadBudget(
                cores=cores,
                busy=_load.busy_elsewhere(cores),
                share=_share(),
                cap=_positive_int(os.environ.get("OMP_NUM_THREADS"), "OMP_NUM_THREADS"),
                override=threads_override(),
            )
            _budget = cached = (now, budget)
    return cached[1]


_budget: tuple[float, ThreadBudget] | None = None
_budget_lock = threading.Lock()


def threads_override() -> int | None:
    """``QSTORE_THREADS`` as a count, ``None`` for ``auto`` or unset.

    Raises
    ------
    ValueError
        If it is neither ``auto`` nor a positive integer.
    """
    value = os.environ.get(THREADS_ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    count = _positive_int(value, THREADS_ENV)
    if count is None:
        raise ValueError(f"{THREADS_ENV}={value!r}: use 'auto' or a positive integer, e.g. 1")
    return count


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, limited by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, int(quota + 0.5)) if quota else cores)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, v1 CFS quota), ``None`` if unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            cfs_quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            cfs_period = int(f.read())
        return None if cfs_quota <= 0 else cfs_quota / cfs_period
    except (OSError, ValueError):
        return None


def _share() -> int:
    """How many ways this process's cores are split: DDP ranks on this node (torchrun's
    ``LOCAL_WORLD_SIZE``) or, inside a Dask worker, its task slots."""
    ranks = _positive_int(os.environ.get("LOCAL_WORLD_SIZE"), "LOCAL_WORLD_SIZE") or 1
    return max(ranks, _dask_worker_slots())


def _dask_worker_slots() -> int:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return 1
    try:
        worker = distributed.get_worker()
    except ValueError:  # not inside a Dask task
        return 1
    return max(1, int(getattr(worker.state, "nthreads", 1)))


def _positive_int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        count = int(value)
    except ValueError:
        log.debug("ignoring %s=%r: not an integer", name, value)
        return None
    return count if count > 0 else None


class _Load:
    """Other processes running now, from the kernel's count of runnable tasks.

    ``/proc/loadavg``'s fourth field counts the threads running or ready to run at this
    instant, this process's own included (the reader, and numba or torch workers still
    finishing their last parallel region: counted as load, they halved the engine's
    threads on a 2-core machine); the one-minute load average reacts too slowly to a
    process that just started. Samples are smoothed (half the weight to the newest) and
    the result rounded down from ``x.75``: a process that keeps running counts from its
    second sample, one that was runnable for one sample (a kernel worker) not at all.
    """

    def __init__(self) -> None:
        self._busy: float | None = None

    def busy_elsewhere(self, cores: int) -> int:
        own = _own_runnable_threads()
        sample = _runnable_tasks()
        if sample is not None:
            others = max(0, sample - own)
            self._busy = others if self._busy is None else 0.5 * (self._busy + others)
        return min(cores, int((self._busy or 0) + 0.25))


def _runnable_tasks() -> int | None:
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_runnable_threads() -> int:
    """Threads of this process running or ready to run, the caller included (at least 1)."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended
            continue
        if stat[stat.rindex(")") + 2 :].startswith("R"):  # the state follows the name
            count += 1
    return max(1, count)


_load = _Load()


# ------------------------------------------------------------------------- numba
@contextmanager
def numba_threads(amplitudes: int) -> Iterator[int]:
    """Run numba's parallel kernels of the enclosed call on :func:`engine_threads` threads.

    numba's count is per calling thread, so concurrent callers (the router's thread
    executor, Dask task threads) each get their own; the previous count is restored.
    Calls running at once in this process share the cores: a call that starts beside
    ``k - 1`` others takes at most ``cores // k`` threads (the load counts other
    processes only, not this one's threads).
    """
    import numba

    global _calls
    with _calls_lock:
        _calls += 1
        calls = _calls
    try:
        wanted = min(engine_threads(amplitudes), numba.config.NUMBA_NUM_THREADS)
        if calls > 1 and wanted > 1:  # one thread needs no share (nor a read of the load)
            budget = thread_budget()
            if budget.override is None:
                wanted = max(1, min(wanted, budget.cores // calls))
        previous = numba.get_num_threads()
        if wanted == previous:
            yield wanted
            return
        numba.set_num_threads(wanted)
        try:
            yield wanted
        finally:
            numba.set_num_threads(previous)
    finally:
        with _calls_lock:
            _calls -= 1


_calls = 0  # numba_threads calls running now, in any thread of this process
_calls_lock = threading.Lock()
