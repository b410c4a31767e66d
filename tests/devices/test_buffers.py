"""Large arrays the batched engine keeps from call to call (``devices/batched/buffers.py``).

A kept buffer must never be handed out while anything still refers to it (an array,
a view, a torch tensor, forward states a VJP is yet to read), and must be handed out
again once nothing does: a training step then faults no fresh pages.
"""

from __future__ import annotations

import gc
import os

import numpy as np
import pennylane as qml
import pytest
import torch

from qstore_pl.devices.batched.adjoint import forward, vjp_sweep
from qstore_pl.devices.batched.buffers import KEPT_MAX, KEPT_MIN_BYTES, Buffers
from qstore_pl.devices.batched.kernel import StateKernel
from qstore_pl.devices.batched.program import Program

ROWS, WIDTH = 4, KEPT_MIN_BYTES // 16  # complex64 rows: 2 * KEPT_MIN_BYTES in all


def test_a_kept_buffer_returns_only_once_no_array_view_or_tensor_refers_to_it():
    kept = Buffers()
    first = kept.empty((ROWS, WIDTH), np.complex64)
    address = first.ctypes.data
    assert first.shape == (ROWS, WIDTH) and first.dtype == np.complex64
    assert address % 64 == 0 and first.flags.c_contiguous
    first[:] = 1.0
    view = first[1:]
    del first
    second = kept.empty((ROWS, WIDTH), np.complex64)  # a view still refers to the first
    assert not np.shares_memory(second, view)
    del view
    tensor = torch.from_numpy(second.view(np.float32))
    del second
    third = kept.empty((ROWS, WIDTH), np.complex64)  # the first, free again
    assert third.ctypes.data == address
    assert kept.empty((ROWS, WIDTH), np.complex64).ctypes.data not in (address, tensor.data_ptr())
    tensor_address = tensor.data_ptr()
    del tensor
    # smaller requests of another dtype take a free kept buffer, the smallest that fits
    again = kept.empty((ROWS, WIDTH), np.float32)
    assert again.ctypes.data == tensor_address
    assert kept.kept_free_bytes() == ROWS * WIDTH * 8  # the one made for the comparison


def test_small_arrays_are_not_kept_and_at_most_kept_max_buffers_are():
    kept = Buffers()
    small = kept.empty(16, np.float64)
    assert small.ctypes.data % 64 == 0 and small.shape == (16,)
    assert kept.kept_free_bytes() == 0
    held = [kept.empty(KEPT_MIN_BYTES, np.uint8) for _ in range(KEPT_MAX + 2)]
    assert len({a.ctypes.data for a in held}) == KEPT_MAX + 2  # each one its own
    del held
    assert kept.kept_free_bytes() == KEPT_MAX * KEPT_MIN_BYTES


def test_a_forked_child_writing_to_a_kept_buffer_leaves_the_parents_unchanged():
    """Data loader workers and multiprocessing fork the training process: a child's
    writes into its copy of the engine's buffers must not reach the parent's states."""
    kept = Buffers()
    states = kept.empty((ROWS, WIDTH), np.complex64)
    states[:] = 1.0
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        states[:] = 2.0
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert np.all(states == 1.0)


def _w1_tape(n: int, x: np.ndarray, weights: np.ndarray) -> qml.tape.QuantumScript:
    ops = [qml.RX(x[:, i], wires=i) for i in range(n)]
    for layer in weights:
        ops += [qml.RY(layer[i, 0], wires=i) for i in range(n)]
        ops += [qml.RZ(layer[i, 1], wires=i) for i in range(n)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
    return qml.tape.QuantumScript(ops, [qml.expval(qml.Z(i)) for i in range(n)])


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_forward_states_a_vjp_still_needs_are_not_reused_by_the_next_forward_pass(dtype):
    """Two forward passes, then the first one's VJP (gradient accumulation, or the
    autograd graph of the previous step still alive): the second pass takes other
    memory, the first VJP equals a fresh kernel's, and once the first states are
    released the third pass reuses them."""
    n, batch = 16, 8  # 2**16 amplitudes x 8 rows: kept buffers in either precision
    rng = np.random.default_rng(7)
    weights = rng.uniform(-np.pi, np.pi, (2, n, 2))
    tapes = [_w1_tape(n, rng.uniform(0, np.pi, (batch, n)), weights) for _ in range(3)]
    program = Program(tapes[0])
    trainable = frozenset(p for p, g in enumerate(program.gates) if g.name in ("RY", "RZ"))
    dys = [rng.normal(size=batch) for _ in range(n)]
    kernel = StateKernel(dtype)
    bound = [program.bind([t]) for t in tapes]

    psi = forward(kernel, bound[0])
    # numba's first compile of a kernel (a cold cache, as in CI) leaves reference cycles
    # that hold its arguments, here the pass's planes, until the collector runs: they
    # would take one of the kept places this test counts on
    gc.collect()
    kept = psi.copy()
    address = psi.ctypes.data
    other = forward(kernel, bound[1])
    assert not np.shares_memory(psi, other)
    np.testing.assert_array_equal(psi, kept)
    grads = vjp_sweep(kernel, bound[0], psi, tapes[0].measurements, dys, trainable)

    fresh = StateKernel(dtype)
    reference = vjp_sweep(
        fresh, bound[0], forward(fresh, bound[0]), tapes[0].measurements, dys, trainable
    )
    assert grads.keys() == reference.keys()
    for p in grads:
        np.testing.assert_array_equal(grads[p], reference[p])
    del psi
    assert forward(kernel, bound[2]).ctypes.data == address


def test_the_memory_check_counts_a_devices_free_kept_buffers_as_available(monkeypatch):
    """Before a batch is allocated, the device's kept buffers that nothing holds count
    as memory it can use: they are its to reuse."""
    from qstore_pl.devices.batched import memory
    from qstore_pl.exceptions import StateTooLargeError

    n, batch = 16, 8
    dev = qml.device("qstore.batched", wires=n, c_dtype=np.complex64, kernel="jit")
    dev.execute([_w1_tape(n, np.full((batch, n), 0.3), np.zeros((1, n, 2)))])
    free = dev._jit.buffers.kept_free_bytes()
    assert free >= batch * 2**n * 8  # the states, at least
    monkeypatch.setattr(memory, "available_bytes", lambda: 0)
    memory.check_states_fit(dev.name, 12, 1, np.complex64, free)
    with pytest.raises(StateTooLargeError, match="cannot simulate 12 wires"):
        memory.check_states_fit(dev.name, 12, 1, np.complex64)
