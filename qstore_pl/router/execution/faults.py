"""Backend faults versus input errors: the one place the router decides whether a
failed job goes to the next backend.

A *backend fault* is the backend's problem, not the circuit's: it crashed, ran out of
memory, timed out, its service answered HTTP 5xx or could not be reached, or it
declared that it cannot run this circuit (PennyLane's ``DeviceError``). Another
backend may well run the same job, so the router falls back.

Everything else (``TypeError``, ``ValueError``, ``KeyError``, ``IndexError`` ...)
means the input is wrong: every backend would fail the same way, so retrying wastes
time (and money on a metered backend) and buries the cause. Those are raised at once,
unchanged.

A compiled layer's batch that its engine failed on runs again through the QNode's
tapes (:func:`after_failure`): the router's next job lists that failure first, as it
lists the backends it fell back from, so the routing report says what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from pennylane.exceptions import (
    DecompositionError,
    DeviceError,
    OperatorPropertyUndefined,
    QuantumFunctionError,
)

#: Exception types that are faults of the backend that raised them. ``OSError``
#: covers connection errors, timeouts and ``requests``' HTTP errors; ``RuntimeError``
#: covers native-extension crashes (pybind11 maps C++ exceptions to it),
#: ``NotImplementedError`` and the router's own ``BackendExecutionError``. PennyLane's
#: device-side refusals (``DeviceError``; ``QuantumFunctionError`` from a device's
#: derivative method; a gate lacking the matrix, generator or decomposition this
#: backend simulates it by) are this backend's limits: another may run the circuit.
FAULT_TYPES: tuple[type[BaseException], ...] = (
    MemoryError,
    OSError,
    RuntimeError,
    DeviceError,
    QuantumFunctionError,
    OperatorPropertyUndefined,
    DecompositionError,
)

#: Packages whose own exceptions are engine failures (a numba typing error in a
#: compiled kernel is the kernel's limit, not the caller's mistake).
ENGINE_PACKAGES = frozenset({"numba", "qsimcirq", "pennylane_lightning", "distributed"})


def is_backend_fault(err: BaseException) -> bool:
    """Whether ``err``, raised by a backend, is the backend's fault.

    An exception may decide for itself with a ``backend_fault`` attribute (``True`` or
    ``False``); otherwise its type decides (:data:`FAULT_TYPES`, or an exception class
    of an engine in :data:`ENGINE_PACKAGES`).

    Parameters
    ----------
    err : BaseException
        What the backend raised.

    Returns
    -------
    bool
        ``True``: try the next backend. ``False``: an input error, raise it unchanged.
    """
    declared = getattr(err, "backend_fault", None)
    if isinstance(declared, bool):
        return declared
    if isinstance(err, FAULT_TYPES):
        return True
    return any(cls.__module__.split(".")[0] in ENGINE_PACKAGES for cls in type(err).__mro__)


#: Failures of an attempt made before the router's next job (a compiled path that
#: failed): that job reports them as the failures it fell back from, once.
_CARRIED: ContextVar[list[str] | None] = ContextVar("qstore_carried_failures", default=None)


@contextlib.contextmanager
def after_failure(failure: str) -> Iterator[None]:
    """Run the block as the fallback of an attempt that failed with ``failure``.

    The first job the router runs in the block lists ``failure`` (``"backend: why"``)
    before its own fallbacks (:func:`take_carried_failures`): the routing report then
    counts the failure and says "fallback after ...".
    """
    carried = _CARRIED.get()
    token = _CARRIED.set([*(carried or ()), failure])
    try:
        yield
    finally:
        _CARRIED.reset(token)


def take_carried_failures() -> tuple[str, ...]:
    """The failures :func:`after_failure` carries in this context, handed out once."""
    carried = _CARRIED.get()
    if not carried:
        return ()
    taken = tuple(carried)
    carried.clear()
    return taken
