"""qstore_pl.datasets.quantum.excited_cluster_states: TFQ's QCNN data."""

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.datasets.quantum import excited_cluster_states


def test_circuits_are_cluster_states_with_one_excitation_and_correct_labels():
    train, y_train, test, y_test = excited_cluster_states(n_qubits=4, n_rounds=5, seed=1)
    assert len(train) == 14 and len(test) == 6 and y_train.dtype == np.float32
    dev = qml.device("default.qubit", wires=4)
    for circuit, label in zip(train + test, np.concatenate([y_train, y_test]), strict=True):
        *cluster, excitation = circuit.operations
        assert isinstance(excitation, qml.RX)
        assert label == (1.0 if abs(excitation.data[0]) <= np.pi / 2 else -1.0)
        # the cluster state is stabilised by X_i Z_{i-1} Z_{i+1} on the ring
        stabiliser = qml.Z(3) @ qml.X(0) @ qml.Z(1)
        tape = qml.tape.QuantumScript(cluster, [qml.expval(stabiliser)])
        assert qml.execute([tape], dev)[0] == pytest.approx(1.0)
    # every qubit gets excited once per round
    qubits = [c.operations[-1].wires[0] for c in train + test]
    assert sorted(qubits) == sorted(list(range(4)) * 5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_qubits >= 2"):
        excited_cluster_states(n_qubits=1)
