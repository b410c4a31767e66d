"""Quantum data: datasets whose samples are circuits."""

from __future__ import annotations

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.templates import ClusterState


def excited_cluster_states(
    n_qubits: int = 8, n_rounds: int = 20, seed: int = 0, train_fraction: float = 0.7
) -> tuple[list[QuantumScript], np.ndarray, list[QuantumScript], np.ndarray]:
    r"""TensorFlow Quantum's QCNN tutorial data: cluster states with one rotated qubit.

    Each circuit prepares the ring cluster state on ``n_qubits`` wires and applies
    ``RX(θ)`` to one qubit, ``θ`` uniform in :math:`[-\pi, \pi)`; the label is ``+1``
    when :math:`|θ| \le \pi/2` and ``-1`` otherwise. ``n_rounds`` passes over the qubits
    give ``n_rounds * n_qubits`` circuits; the first ``train_fraction`` of them are the
    training split (as in the tutorial, where TFQ prepends the cluster state with
    ``AddCircuit``; here it is part of each data circuit).

    Returns
    -------
    tuple
        ``(train_circuits, train_labels, test_circuits, test_labels)``; labels are
        float32 ``±1``.
    """
    if n_qubits < 2 or n_rounds < 1 or not 0 < train_fraction < 1:
        raise ValueError(
            "need n_qubits >= 2, n_rounds >= 1 and 0 < train_fraction < 1, got "
            f"{n_qubits}, {n_rounds}, {train_fraction}"
        )
    rng = np.random.default_rng(seed)
    wires = list(range(n_qubits))
    with qml.QueuingManager.stop_recording():
        cluster = ClusterState(wires).decomposition()
        circuits, labels = [], []
        for _ in range(n_rounds):
            for qubit in wires:
                theta = rng.uniform(-np.pi, np.pi)
                circuits.append(QuantumScript([*cluster, qml.RX(theta, qubit)]))
                labels.append(1.0 if -np.pi / 2 <= theta <= np.pi / 2 else -1.0)
    targets = np.array(labels, dtype=np.float32)
    split = int(len(circuits) * train_fraction)
    return circuits[:split], targets[:split], circuits[split:], targets[split:]
