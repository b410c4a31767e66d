"""Data sets for the examples and for training on circuits.

- :mod:`~qstore_pl.datasets.classical`: small classical sets read from local files
  (scikit-learn's digits, Fashion-MNIST), reduced with PCA for an encoding;
- :mod:`~qstore_pl.datasets.quantum`: quantum data, samples that are circuits;
- :mod:`~qstore_pl.datasets.circuits`: circuit collections as a torch ``Dataset`` and
  a ``tf.data`` pipeline.

Every name is importable from here; each module (and scikit-learn, torch or
TensorFlow behind it) loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    **dict.fromkeys(
        (
            "FASHION_MNIST_CLASSES",
            "FASHION_MNIST_ENV",
            "FASHION_MNIST_FILES",
            "DatasetUnavailableError",
            "fashion_mnist_paths",
            "load_digits_pca",
            "load_fashion_mnist",
            "pca_pipeline",
            "read_idx",
        ),
        "classical",
    ),
    "excited_cluster_states": "quantum",
    "CircuitDataset": "circuits",
    "circuits_to_tf_dataset": "circuits",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qstore_pl.datasets' has no attribute {name!r}")
    return getattr(importlib.import_module(f"qstore_pl.datasets.{home}"), name)
