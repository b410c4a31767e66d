"""The parameters stored with each recorded state: every gate parameter of its own
broadcast element, in circuit order, shared ones (the weights) included."""

import json

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.db.circuits import parameter_texts


def test_each_element_gets_its_own_and_the_shared_parameters_in_circuit_order():
    tape = QuantumScript(
        [
            qml.RX(np.array([0.1, 0.2]), 0),
            qml.RY(0.3, 0),
            qml.Rot(np.array([1.0, 2.0]), 0.5, np.array([3.0, 4.0]), 1),
            qml.StatePrep(np.array([1, 0, 0, 0j]), [2, 3]),  # state vectors are left out
            qml.RZ(np.array([5.0, 6.0]), 1),
            qml.CRX(0.25, [0, 1]),
            qml.CRY(0.125, [1, 0]),
        ]
    )
    texts = parameter_texts(tape)
    assert [json.loads(t) for t in texts] == [
        [0.1, 0.3, 1.0, 0.5, 3.0, 5.0, 0.25, 0.125],
        [0.2, 0.3, 2.0, 0.5, 4.0, 6.0, 0.25, 0.125],
    ]
    assert texts[0] == "[0.1, 0.3, 1.0, 0.5, 3.0, 5.0, 0.25, 0.125]"  # json.dumps spacing


def test_an_unbatched_circuit_has_one_text_and_no_parameters_an_empty_list():
    assert parameter_texts(QuantumScript([qml.RX(0.5, 0), qml.RY(-1.5, 1)])) == ["[0.5, -1.5]"]
    assert parameter_texts(QuantumScript([qml.Hadamard(0)])) == ["[]"]
