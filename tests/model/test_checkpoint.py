"""The checkpoint file: written whole, read back exactly, never a pickle."""

import numpy as np
import pytest

from qstore_pl.model import checkpoint


def _snapshot(arrays: dict[str, np.ndarray]) -> checkpoint.Snapshot:
    return checkpoint.Snapshot(
        config={"n_qubits": 2},
        n_features=2,
        n_classes=2,
        gradient="adjoint",
        epochs_done=1,
        history=[{"epoch": 1, "loss": 0.5}],
        arrays=arrays,
    )


def test_round_trip_keeps_the_arrays_and_the_record(tmp_path):
    path = tmp_path / "model.npz"
    weights = np.random.default_rng(0).normal(size=(3, 2))
    checkpoint.write(path, _snapshot({"weights": weights}))
    saved = checkpoint.read(path)
    np.testing.assert_array_equal(saved.arrays["weights"], weights)
    assert (saved.n_features, saved.n_classes, saved.epochs_done) == (2, 2, 1)
    assert saved.history == [{"epoch": 1, "loss": 0.5}]


def test_an_object_array_fails_at_write_and_keeps_the_previous_file(tmp_path):
    # read() refuses pickles, so a pickled array would make the checkpoint unreadable
    path = tmp_path / "model.npz"
    checkpoint.write(path, _snapshot({"weights": np.ones(2)}))
    with pytest.raises(ValueError, match="allow_pickle"):
        checkpoint.write(path, _snapshot({"weights": np.array([object()], dtype=object)}))
    np.testing.assert_array_equal(checkpoint.read(path).arrays["weights"], np.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
