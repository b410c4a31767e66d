"""qstore.batched refuses what it cannot hold and what would index outside its arrays.

A 40-wire circuit raised numpy's ``MemoryError`` from deep inside the engine; the
compiled kernels check no bounds, so an encoding that does not fit its arrays would
corrupt memory instead of raising.
"""

from __future__ import annotations

import re

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.devices.batched import jit_kernels
from qstore_pl.devices.batched.kernel import StateKernel, encode
from qstore_pl.devices.batched.program import ArrayGate
from qstore_pl.exceptions import StateTooLargeError, UnsupportedCircuitError

WIDE = 40


def _wide_circuit(dev):
    @qml.qnode(dev)
    def circuit(x):
        for w in range(WIDE):  # every wire touched: nothing to leave out
            qml.RX(x, wires=w)
        return qml.expval(qml.Z(0))

    return circuit


def test_batched_names_width_memory_and_alternative_before_allocating():
    with pytest.raises(StateTooLargeError) as caught:
        _wide_circuit(qml.device("qstore.batched", wires=WIDE))(0.3)
    message = str(caught.value)
    assert "cannot simulate 40 wires" in message
    assert re.search(r"need \d+\.\d TiB, and \d+\.\d [KMGT]iB of memory is available", message)
    assert "complex64" in message and "default.tensor" in message
    assert isinstance(caught.value, MemoryError)  # callers that catch MemoryError still do


def test_router_lists_every_backends_width_limit():
    dev = qml.device("qstore.router", wires=WIDE)
    with pytest.raises(UnsupportedCircuitError) as caught:
        _wide_circuit(dev)(0.3)
    message = str(caught.value)
    assert message.startswith("no backend can run this circuit")
    for spec in dev.backends:
        assert f"{spec.name}: 40 wires > max {spec.capabilities.max_wires}" in message


def _dense(wires, dim=None):
    dim = dim or 2 ** len(wires)
    return ArrayGate("dense", tuple(wires), np.eye(dim, dtype=complex))


def test_encoding_outside_the_state_is_refused():
    with pytest.raises(ValueError, match="not distinct positions below 3"):
        encode([_dense((0, 3))], 3, np.complex128)  # wire 3 of a 3-wire state
    with pytest.raises(ValueError, match="not distinct positions below 3"):
        encode([_dense((1, 1))], 3, np.complex128)
    with pytest.raises(ValueError, match="gather 8 indices below 8"):
        encode([ArrayGate("perm", (0,), np.arange(4))], 3, np.complex128)
    # an affine permutation's two tables: 2**2 + 2**2 entries on 4 wires, all below 16
    kinds, counts = np.array([jit_kernels.AFFINE]), np.ones(1, np.int64)
    for tables in (np.arange(7), np.array([0, 1, 2, 3, 0, 4, 8, 16])):
        offsets = np.array([0, tables.size])
        with pytest.raises(ValueError, match="take two tables of 8 indices below 16"):
            jit_kernels.check_sequence(4, kinds, counts, offsets, tables, np.zeros(1, int), 1)


def test_values_too_short_for_the_gates_are_refused():
    kinds, counts, offsets, positions, value_offsets, *_ = encode(
        [_dense((0, 1))], 2, np.complex128
    )
    with pytest.raises(ValueError, match="overrun the 15 values"):
        jit_kernels.check_sequence(2, kinds, counts, offsets, positions, value_offsets, 15)


def test_states_of_another_width_are_refused():
    states = np.zeros((2, 8), dtype=complex)
    with pytest.raises(ValueError, match=r"not C-ordered rows of 2\*\*4 amplitudes"):
        StateKernel().apply_all(states, [_dense((0,))], 4)
