"""Structure groups: tapes that differ only in parameters share a group, nothing else."""

from __future__ import annotations

import pennylane as qml
import pytest

from qstore_pl.devices.grouping import group_by_structure, structure_key


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
