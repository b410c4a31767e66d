"""Circuit collections as a torch ``Dataset`` and a ``tf.data`` pipeline.

Circuits travel as circuit tensors (:mod:`qstore_pl.circuits.tensor`, numeric, for
every framework) or as JSON text (:mod:`qstore_pl.circuits.json_format`, exact and
complete, as ``tf.string`` in TensorFlow). torch and TensorFlow are imported only when
these helpers are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qstore_pl.circuits.json_format import tape_to_json
from qstore_pl.circuits.tensor import encode_circuits

ENCODINGS = ("tensor", "json")


def _check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")


def _labels(labels, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim == 0 or len(labels) != n:
        raise ValueError(
            f"got {n} circuits but labels of shape {labels.shape}; give one label per circuit"
        )
    return labels


def _encode(circuits: list, encoding: str, encode_kwargs: dict):
    if encoding == "tensor":
        return encode_circuits(circuits, **encode_kwargs)
    if encode_kwargs:
        raise ValueError(f"{sorted(encode_kwargs)} only apply to encoding='tensor'")
    return [tape_to_json(c) for c in circuits]


def _import_torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a test dependency
        raise ImportError("CircuitDataset needs PyTorch: pip install torch") from err
    return torch


class CircuitDataset:
    """A map-style torch ``Dataset`` of circuits (and labels).

    Item ``i`` is ``(circuit, label)``, or ``circuit`` alone when there are no labels.
    With ``encoding="tensor"`` the circuit is its ``(max_ops, k)`` float tensor block
    (all circuits padded to the same ``max_ops``, so ``DataLoader`` batches them into
    ``(batch, max_ops, k)``); with ``"json"`` it is the JSON text (batches are lists).
    Labels become tensors of their numpy dtype.

    Instances are also ``torch.utils.data.Dataset`` instances; torch is imported on
    construction, not when this module is imported.

    Parameters
    ----------
    circuits : sequence of QuantumScript (or operator sequences for "tensor")
    labels : array_like, optional
        One label (scalar or array) per circuit.
    encoding : {"tensor", "json"}
    **encode_kwargs
        ``max_ops``, ``max_params``, ``dtype``, ``wires`` for
        :func:`~qstore_pl.circuits.encode_circuits`.
    """

    def __new__(cls, *args, **kwargs):
        if cls is CircuitDataset:  # become the subclass that also derives from torch's Dataset
            cls = _torch_dataset_class()
        return super().__new__(cls)

    def __init__(
        self,
        circuits: Sequence,
        labels: npt.ArrayLike | None = None,
        encoding: str = "tensor",
        **encode_kwargs: Any,
    ):
        torch = _import_torch()
        _check_encoding(encoding)
        circuits = list(circuits)
        self.encoding = encoding
        encoded = _encode(circuits, encoding, encode_kwargs)
        self.circuits = torch.from_numpy(encoded) if encoding == "tensor" else encoded
        labels = _labels(labels, len(circuits))
        self.labels = None if labels is None else torch.as_tensor(labels)

    def __len__(self) -> int:
        return len(self.circuits)

    def __getitem__(self, i):
        if self.labels is None:
            return self.circuits[i]
        return self.circuits[i], self.labels[i]


_TORCH_CLASS: list[type] = []


def _torch_dataset_class() -> type:
    if not _TORCH_CLASS:
        torch = _import_torch()
        cls = type(
            "_TorchCircuitDataset",
            (CircuitDataset, torch.utils.data.Dataset),
            {"__module__": __name__, "__doc__": CircuitDataset.__doc__},
        )
        _TORCH_CLASS.append(cls)
    return _TORCH_CLASS[0]


def __getattr__(name: str):
    # lets pickle (DataLoader worker processes) find the torch-derived class by name
    if name == "_TorchCircuitDataset":
        return _torch_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def circuits_to_tf_dataset(
    circuits: Sequence,
    labels: npt.ArrayLike | None = None,
    batch_size: int | None = 32,
    encoding: str = "tensor",
    shuffle: bool = False,
    seed: int | None = None,
    **encode_kwargs: Any,
) -> Any:
    """A ``tf.data.Dataset`` of circuits (and labels), shuffled and batched.

    Parameters
    ----------
    circuits : sequence of QuantumScript (or operator sequences for "tensor")
    labels : array_like, optional
        One label per circuit; elements are ``(circuit, label)`` pairs when given.
    batch_size : int or None
        Batch size (the last batch may be smaller); ``None`` leaves the dataset unbatched.
    encoding : {"tensor", "json"}
        ``"tensor"``: float tensors ``(max_ops, k)`` per circuit (see
        :func:`~qstore_pl.circuits.encode_circuits`); ``"json"``: ``tf.string`` scalars
        holding :func:`~qstore_pl.circuits.tape_to_json` text.
    shuffle : bool
        Shuffle the whole dataset (reshuffled each epoch).
    seed : int, optional
        Shuffle seed, for reproducible order.
    **encode_kwargs
        ``max_ops``, ``max_params``, ``dtype``, ``wires`` for the tensor encoding.
    """
    _check_encoding(encoding)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    try:
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - tensorflow is a test dependency
        raise ImportError(
            "circuits_to_tf_dataset needs TensorFlow: pip install tensorflow"
        ) from err
    circuits = list(circuits)
    encoded = _encode(circuits, encoding, encode_kwargs)
    if encoding == "json":
        encoded = tf.constant(encoded, dtype=tf.string, shape=(len(encoded),))
    labels = _labels(labels, len(circuits))
    elements = encoded if labels is None else (encoded, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(max(len(circuits), 1), seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        dataset = dataset.batch(batch_size)
    return dataset
