"""Structure groups: tapes that differ only in parameters share a group, nothing else."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch

from qstore_pl.devices.grouping import broadcast_size, group_by_structure, structure_key


def tape(*ops, measurements=None):
    return qml.tape.QuantumScript(list(ops), measurements or [qml.expval(qml.Z(0))])


@pytest.mark.parametrize(
    "a, b",
    [
        (tape(qml.CNOT([0, 1])), tape(qml.CNOT([1, 0]))),  # direction
        (tape(qml.CRX(0.1, [0, 2])), tape(qml.CRX(0.1, [2, 0]))),
        (tape(qml.Toffoli([0, 1, 2])), tape(qml.Toffoli([2, 1, 0]))),
        (tape(qml.ctrl(qml.RX(0.1, 1), 0, control_values=0)), tape(qml.ctrl(qml.RX(0.1, 1), 0))),
        (tape(qml.RX(0.1, 0)), tape(qml.RY(0.1, 0))),
        (tape(qml.RX(0.1, 0)), tape(qml.RX(0.1, 0), measurements=[qml.expval(qml.X(0))])),
    ],
)
def test_different_structures_never_share_a_group(a, b):
    assert structure_key(a) != structure_key(b)
    assert len(group_by_structure([a, b])) == 2


def test_same_structure_with_other_parameters_shares_a_group_in_order():
    tapes = [
        tape(qml.RX(x, 0), qml.CNOT([0, 1]), qml.CRY(2 * x, [1, 0]), qml.ctrl(qml.RZ(x, 1), 0))
        for x in (0.1, 0.2, 0.3)
    ]
    other = tape(qml.RY(0.5, 0))
    groups = group_by_structure([tapes[0], other, tapes[1], tapes[2]])
    assert [g.indices for g in groups] == [[0, 2, 3], [1]]
    assert groups[0].tapes == [tapes[0], tapes[1], tapes[2]]


@pytest.mark.parametrize(
    "ops",
    [
        [qml.RX(0.1, 0), qml.CNOT([0, 1])],
        [qml.RX(np.array([0.1, 0.2]), 0), qml.CNOT([0, 1]), qml.RY(0.3, 1)],
        [qml.Rot(0.1, np.ones(3), 0.2, wires=1), qml.RX(np.zeros(3), 0)],
        [qml.RX(torch.rand(5), 0), qml.RY(torch.rand(5, requires_grad=True), 1)],
        [qml.StatePrep(np.ones((3, 4)) / 2, wires=[0, 1]), qml.RX(0.2, 0)],
        [qml.QubitUnitary(np.stack([np.eye(2)] * 4), 0), qml.Hadamard(1)],
        [qml.BasisState(np.array([1, 0]), [0, 1])],  # no declared dimensions: PennyLane's
        [qml.AmplitudeEmbedding(np.ones((2, 4)), wires=[0, 1], normalize=True)],
    ],
)
def test_broadcast_size_agrees_with_pennylane(ops):
    ours = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
    theirs = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
    assert broadcast_size(ours) == theirs.batch_size


def test_mismatched_broadcast_sizes_raise_pennylanes_error():
    bad = tape(qml.RX(np.ones(2), 0), qml.RY(np.ones(3), 1))
    with pytest.raises(ValueError, match="batch sizes"):
        broadcast_size(bad)
