"""Data sets for the examples: bundled digits with PCA fitted on the training split,
Fashion-MNIST from local IDX or .npz files (written here in the real format), and the
error that says where the data was looked for when it is absent."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from idx_files import write_idx
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from qstore_pl.datasets import (
    FASHION_MNIST_ENV,
    DatasetUnavailableError,
    load_digits_pca,
    load_fashion_mnist,
    read_idx,
)


# --------------------------------------------------------------------- digits
def test_digits_shapes_labels_and_angle_range():
    x_train, x_test, y_train, y_test = load_digits_pca()
    digits = load_digits()
    n = int(np.isin(digits.target, (3, 6)).sum())  # 183 threes + 181 sixes
    assert len(x_train) + len(x_test) == n
    assert len(x_test) == int(np.ceil(0.25 * n))
    assert x_train.shape[1] == x_test.shape[1] == 8
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64
    assert set(y_train) == set(y_test) == {0, 1}
    # training features span exactly [0, pi]; test features are clipped into it
    assert np.allclose(x_train.min(axis=0), 0.0) and np.allclose(x_train.max(axis=0), np.pi)
    assert x_test.min() >= 0.0 and x_test.max() <= np.pi
    # the labels belong to the features: a linear model separates 3 from 6
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    assert model.score(x_test, y_test) >= 0.95


def test_digits_labels_follow_the_class_order():
    x_train, x_test, y_train, y_test = load_digits_pca(
        classes=(6, 3), n_components=4, dtype="float32"
    )
    assert x_train.dtype == x_test.dtype == np.float32
    x, y = load_digits(return_X_y=True)
    keep = np.isin(y, (6, 3))
    relabelled = np.where(y[keep] == 6, 0, 1)  # 6 -> 0, 3 -> 1
    _, _, y_train_ref, y_test_ref = train_test_split(
        x[keep], relabelled, test_size=0.25, random_state=0, stratify=relabelled
    )
    assert np.array_equal(y_train, y_train_ref) and np.array_equal(y_test, y_test_ref)


def test_digits_pca_is_fitted_on_the_training_split_only():
    x_train, x_test, _, _, pipeline = load_digits_pca(seed=3, return_pipeline=True)
    # the documented split, redone independently
    x, y = load_digits(return_X_y=True)
    keep = np.isin(y, (3, 6))
    raw_train, raw_test, _, _ = train_test_split(
        x[keep], y[keep], test_size=0.25, random_state=3, stratify=y[keep]
    )
    standardise = pipeline.named_steps["standardise"]
    assert np.allclose(standardise.mean_, raw_train.mean(axis=0))
    assert not np.allclose(standardise.mean_, x[keep].mean(axis=0))
    assert np.allclose(pipeline.transform(raw_train), x_train)
    assert np.allclose(pipeline.transform(raw_test), x_test)
    # the principal axes are those of the standardised training data
    centred = (raw_train - raw_train.mean(axis=0)) / np.where(
        raw_train.std(axis=0) > 0, raw_train.std(axis=0), 1.0
    )
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = pipeline.named_steps["pca"].components_
    assert np.allclose(np.abs(np.sum(axes * vt[:8], axis=1)), 1.0, atol=1e-8)


def test_digits_amplitude_rows_have_unit_norm():
    x_train, x_test, _, _ = load_digits_pca(n_components=4, scale="amplitude")
    assert np.allclose(np.linalg.norm(x_train, axis=1), 1.0)
    assert np.allclose(np.linalg.norm(x_test, axis=1), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": (3, 3)}, "two different labels"),
        ({"classes": (3, 12)}, r"class 12 is not a label"),
        ({"n_components": 65}, "between 1 and 64"),
        ({"scale": "phase"}, "scale must be one of"),
        ({"test_size": 1.5}, "test_size"),
    ],
)
def test_digits_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_pca(**kwargs)


# ------------------------------------------------------------- Fashion-MNIST
def fake_fashion_mnist(folder, n_train=60, n_test=20, seed=0):
    """Small images whose brightness depends on the label, and the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28)) + 20 * labels[:, None, None]
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
        arrays[split] = (images.astype(np.uint8), labels)
    return arrays


def test_fashion_mnist_reads_idx_files(tmp_path):
    arrays = fake_fashion_mnist(tmp_path)
    x_train, x_test, _, y_test = load_fashion_mnist(tmp_path)
    assert x_train.shape == (60, 28, 28) and x_test.shape == (20, 28, 28)
    assert x_train.dtype == np.float32
    assert np.allclose(x_train, arrays["train"][0] / 255.0)
    assert np.array_equal(y_test, arrays["t10k"][1])
    assert np.array_equal(read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz"), arrays["t10k"][1])


def test_fashion_mnist_two_classes_with_pca_from_the_environment(tmp_path, monkeypatch):
    arrays = fake_fashion_mnist(tmp_path)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    x_train, x_test, y_train, _, pipeline = load_fashion_mnist(
        classes=(7, 1), n_components=4, max_train=10, return_pipeline=True
    )
    labels = arrays["train"][1]
    expected = labels[np.isin(labels, (7, 1))][:10]
    assert np.array_equal(y_train, np.where(expected == 7, 0, 1))
    assert x_train.shape == (10, 4) and x_test.shape == (4, 4)
    assert np.allclose(x_train.min(axis=0), 0.0, atol=1e-6)
    assert np.allclose(x_train.max(axis=0), np.pi, atol=1e-6)
    raw_test = arrays["t10k"][0][np.isin(arrays["t10k"][1], (7, 1))] / 255.0
    assert np.allclose(pipeline.transform(raw_test.reshape(4, -1)), x_test, atol=1e-6)


def test_fashion_mnist_from_npz(tmp_path):
    rng = np.random.default_rng(1)
    data = {
        "x_train": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "y_train": np.arange(8) % 10,
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": np.array([0, 1, 2]),
    }
    np.savez(tmp_path / "fashion-mnist.npz", **data)
    for where in (tmp_path, tmp_path / "fashion-mnist.npz"):
        x_train, _, y_train, y_test = load_fashion_mnist(where, dtype="float64")
        assert np.allclose(x_train, data["x_train"] / 255.0)
        assert np.array_equal(y_train, data["y_train"])
        assert np.array_equal(y_test, data["y_test"])
    np.savez(tmp_path / "partial.npz", x_train=data["x_train"])
    with pytest.raises(ValueError, match=r"no array\(s\) \['y_train', 'x_test', 'y_test'\]"):
        load_fashion_mnist(tmp_path / "partial.npz")


def test_fashion_mnist_absent_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetUnavailableError) as info:
        load_fashion_mnist()
    error = info.value
    assert isinstance(error, FileNotFoundError)
    message = str(error)
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist") in message
    assert "train-images-idx3-ubyte.gz" in message and FASHION_MNIST_ENV in message
    assert error.searched == (
        tmp_path / "nowhere",
        tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist",
    )
    with pytest.raises(DatasetUnavailableError, match="never downloads"):
        load_fashion_mnist(tmp_path / "empty-folder")


def test_corrupt_idx_files_are_named(tmp_path):
    fake_fashion_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 60) + bytes(59))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz holds 59 bytes"):
        load_fashion_mnist(tmp_path)
    with gzip.open(path, "wb") as f:
        f.write(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        load_fashion_mnist(tmp_path)
