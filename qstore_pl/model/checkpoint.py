"""One file holds a model: its config, what it learned, and how far training got.

Saved models and per-epoch checkpoints share the format: a numpy ``.npz`` archive of
the trainer's named arrays plus a JSON record (no pickles, so loading runs no code),
written whole or not at all, so a crash mid-write leaves the previous checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qstore_pl.support.atomic_file import atomic_write

FORMAT = 1
_META = "__meta__"
#: The checkpoint file in a ``checkpoint_dir``.
CHECKPOINT_FILE = "checkpoint.npz"


@dataclass
class Snapshot:
    """A model at the end of an epoch.

    Attributes
    ----------
    config : dict
        :meth:`TrainingConfig.to_dict`.
    n_features, n_classes : int
        Input width and number of classes.
    gradient : str
        The gradient method it was trained with.
    epochs_done : int
        Epochs completed.
    history : list[dict]
        One record per completed epoch.
    arrays : dict[str, numpy.ndarray]
        The trainer's state.
    """

    config: dict[str, Any]
    n_features: int
    n_classes: int
    gradient: str
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def write(path: str | os.PathLike, snapshot: Snapshot) -> None:
    """Write ``snapshot`` to ``path`` atomically."""
    meta = {k: v for k, v in vars(snapshot).items() if k != "arrays"}
    text = json.dumps({"format": FORMAT, **meta})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as out:
        # allow_pickle=False: an object array fails here, not later in read()
        np.savez(out, allow_pickle=False, **{_META: np.array(text)}, **snapshot.arrays)


def read(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot written by :func:`write`.

    Raises
    ------
    ValueError
        When ``path`` is not such a file.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive[_META]))
            arrays = {k: archive[k] for k in archive.files if k != _META}
    except (KeyError, OSError, ValueError) as err:
        raise ValueError(
            f"{os.fspath(path)!r} is not a saved QuantumModel ({err}); save one with "
            "QuantumModel.save(path)"
        ) from err
    if meta.pop("format", None) != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} was written in an unknown format")
    return Snapshot(**meta, arrays=arrays)
