"""Circuit collections as torch Datasets and tf.data pipelines (qstore_pl.datasets.circuits)."""

from __future__ import annotations

import pickle

import numpy as np
import pennylane as qml
import pytest
import tensorflow as tf
import torch
from pennylane.tape import QuantumScript

from qstore_pl.circuits import (
    decode_circuits,
    encode_circuits,
    row_width,
    tape_from_json,
)
from qstore_pl.datasets import CircuitDataset, circuits_to_tf_dataset


def make_circuits(n: int) -> list[QuantumScript]:
    """Circuit i has i % 4 + 1 gates with angles that identify it."""
    return [
        QuantumScript(
            [qml.RY(float(i) + 0.5 * j, wires=j % 2) for j in range(i % 4)] + [qml.CNOT([0, 1])],
            [qml.expval(qml.PauliZ(1))],
        )
        for i in range(n)
    ]


def test_torch_dataset_items_and_batches():
    circuits = make_circuits(10)
    labels = np.arange(10) % 2
    dataset = CircuitDataset(circuits, labels)
    assert isinstance(dataset, torch.utils.data.Dataset) and isinstance(dataset, CircuitDataset)
    assert len(dataset) == 10
    block, label = dataset[3]
    assert block.shape == (4, row_width(3)) and block.dtype == torch.float64
    assert label.item() == 1
    np.testing.assert_array_equal(block.numpy(), encode_circuits(circuits)[3])
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 4, 7), (4, 4, 7), (2, 4, 7)]
    np.testing.assert_array_equal(torch.cat([b[1] for b in batches]).numpy(), labels)
    decoded = decode_circuits(batches[0][0])
    assert all(qml.equal(d, QuantumScript(c.operations)) for d, c in zip(decoded, circuits))


def test_torch_dataset_without_labels_json_and_pickling():
    circuits = make_circuits(3)
    unlabelled = CircuitDataset(circuits, max_ops=6, dtype=np.float32)
    assert unlabelled[0].shape == (6, 7) and unlabelled[0].dtype == torch.float32
    as_json = CircuitDataset(circuits, labels=[[1.0, 0.0]] * 3, encoding="json")
    text, label = as_json[2]
    assert qml.equal(tape_from_json(text), circuits[2]) and label.tolist() == [1.0, 0.0]
    restored = pickle.loads(pickle.dumps(as_json))  # as DataLoader worker processes do
    assert type(restored) is type(as_json) and restored[2][0] == text


def test_tf_dataset_tensor_encoding():
    circuits = make_circuits(7)
    labels = np.arange(7, dtype=np.float32)
    dataset = circuits_to_tf_dataset(circuits, labels, batch_size=3)
    batches = list(dataset.as_numpy_iterator())
    assert [x.shape for x, _ in batches] == [(3, 4, 7), (3, 4, 7), (1, 4, 7)]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)
    np.testing.assert_array_equal(
        np.concatenate([x for x, _ in batches]), encode_circuits(circuits)
    )
    unbatched = circuits_to_tf_dataset(circuits, batch_size=None)
    assert unbatched.element_spec.shape == (4, 7) and unbatched.element_spec.dtype == tf.float64


def test_tf_dataset_json_encoding_and_shuffle():
    circuits = make_circuits(8)
    labels = np.arange(8)
    dataset = circuits_to_tf_dataset(
        circuits, labels, batch_size=8, encoding="json", shuffle=True, seed=4
    )
    assert dataset.element_spec[0].dtype == tf.string
    texts, order = next(dataset.as_numpy_iterator())
    assert sorted(order.tolist()) == list(range(8)) and order.tolist() != list(range(8))
    for text, i in zip(texts, order):
        assert qml.equal(tape_from_json(text.decode()), circuits[i])
    again = circuits_to_tf_dataset(
        circuits, labels, batch_size=8, encoding="json", shuffle=True, seed=4
    )
    assert next(again.as_numpy_iterator())[1].tolist() == order.tolist()  # seeded order


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: CircuitDataset(c, labels=[0, 1]), "one label per circuit"),
        (lambda c: CircuitDataset(c, encoding="qasm"), "encoding must be one of"),
        (
            lambda c: CircuitDataset(c, encoding="json", max_ops=3),
            "only apply to encoding='tensor'",
        ),
        (lambda c: circuits_to_tf_dataset(c, batch_size=0), "batch_size"),
        (lambda c: circuits_to_tf_dataset(c, labels=np.zeros(5)), "one label per circuit"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(make_circuits(3))
