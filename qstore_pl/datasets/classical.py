"""Small classical data sets for the examples, read from local files only.

- :func:`load_digits_pca`: scikit-learn's bundled 8x8 digits (no download), two
  classes, reduced with PCA to as many features as qubits.
- :func:`load_fashion_mnist`: Fashion-MNIST from files already on this machine (the
  four IDX files Keras and the original project distribute, or one ``.npz``); these
  machines have no network, so nothing is ever downloaded.

Both reduce features the same way (:func:`pca_pipeline`): standardise, PCA, then scale
for an encoding, every step fitted on the training split only so that nothing about
the test split leaks into training.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

from qstore_pl.exceptions import QstoreError

#: Environment variable naming a folder or ``.npz`` file with Fashion-MNIST.
FASHION_MNIST_ENV = "QSTORE_FASHION_MNIST"
#: The IDX files of Fashion-MNIST (``.gz`` or uncompressed).
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_NPZ_NAMES = ("fashion-mnist.npz", "fashion_mnist.npz")
_SCALES = ("angle", "amplitude", None)
_IDX_TYPES = {0x08: np.uint8}  # the only element type Fashion-MNIST uses


class DatasetUnavailableError(QstoreError, FileNotFoundError):
    """A data set is not on this machine; the message says where it was looked for and
    how to provide it. ``searched`` holds those paths."""

    def __init__(self, message: str, searched: Sequence[Path] = ()):
        super().__init__(message)
        self.searched = tuple(searched)


# ----------------------------------------------------------------- reduction
def pca_pipeline(n_components: int, scale: str | None = "angle", seed: int = 0) -> Pipeline:
    """Standardise, PCA to ``n_components``, then scale for an encoding (unfitted).

    Parameters
    ----------
    n_components : int
        Features kept (qubits for angle encoding; ``2**n`` amplitudes for ``n`` qubits).
    scale : {"angle", "amplitude", None}
        ``"angle"``: each feature mapped to ``[0, π]`` by the training split's minimum
        and maximum (test values outside that range are clipped to it);
        ``"amplitude"``: each row divided by its Euclidean norm; ``None``: the
        principal components as they are.
    seed : int
        Seed of the PCA solver.
    """
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {_SCALES}, got {scale!r}")
    steps = [
        ("standardise", StandardScaler()),
        ("pca", PCA(n_components=n_components, random_state=seed)),
    ]
    if scale == "angle":
        steps.append(("scale", MinMaxScaler(feature_range=(0.0, np.pi), clip=True)))
    elif scale == "amplitude":
        steps.append(("scale", Normalizer(norm="l2")))
    return Pipeline(steps)


def _reduce(x_train, x_test, n_components, scale, seed) -> tuple[np.ndarray, np.ndarray, Pipeline]:
    limit = min(x_train.shape[0], x_train.shape[1])
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise TypeError(f"n_components must be an int, got {n_components!r}")
    if not 1 <= n_components <= limit:
        raise ValueError(
            f"n_components={n_components} must be between 1 and {limit} (the smaller of "
            f"{x_train.shape[0]} training samples and {x_train.shape[1]} features)"
        )
    pipeline = pca_pipeline(int(n_components), scale, seed)
    reduced_train = pipeline.fit_transform(x_train)
    reduced_test = pipeline.transform(x_test)
    if scale == "amplitude":
        for name, rows in (("training", reduced_train), ("test", reduced_test)):
            if not np.allclose(np.linalg.norm(rows, axis=1), 1.0):
                raise ValueError(
                    f"a {name} sample has all principal components 0 and cannot be "
                    "amplitude-encoded; use scale='angle' or more components"
                )
    return reduced_train, reduced_test, pipeline


def _select(x, y, classes: Sequence[int] | None, known: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``classes`` and relabel them ``0 .. k-1`` in the order given."""
    if classes is None:
        return x, y
    classes = tuple(classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must name at least two different labels, got {classes!r}")
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < known:
            raise ValueError(f"class {c!r} is not a label; labels are 0 .. {known - 1}")
    keep = np.isin(y, classes)
    relabel = np.zeros(known, dtype=np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    return x[keep], relabel[y[keep]]


# -------------------------------------------------------------------- digits
def load_digits_pca(
    classes: Sequence[int] = (3, 6),
    n_components: int = 8,
    test_size: float = 0.25,
    seed: int = 0,
    scale: str | None = "angle",
    *,
    dtype: npt.DTypeLike = "float64",
    return_pipeline: bool = False,
) -> tuple:
    """Two (or more) classes of scikit-learn's 8x8 digits, PCA-reduced.

    The split is ``sklearn.model_selection.train_test_split(x, y, test_size=...,
    random_state=seed, stratify=y)`` on the relabelled classes; :func:`pca_pipeline`
    is fitted on the training split only and applied to both.

    Parameters
    ----------
    classes : Sequence[int]
        Digits to keep, relabelled ``0, 1, ...`` in this order (the default: 3 → 0,
        6 → 1).
    n_components : int
        Features per sample after PCA (at most 64).
    test_size : float
        Fraction held out for testing.
    seed : int
        Seed of the split and of PCA.
    scale : {"angle", "amplitude", None}
        ``"angle"``: features in ``[0, π]``; ``"amplitude"``: unit-norm rows.
    dtype : numpy dtype
        Of the returned features (``"float32"`` for Keras models).
    return_pipeline : bool
        Also return the fitted scikit-learn pipeline (to transform new samples).

    Returns
    -------
    x_train, x_test, y_train, y_test : numpy.ndarray
        Features of shape ``(n, n_components)`` and int64 labels; followed by the
        fitted pipeline when ``return_pipeline``.

    Examples
    --------
    >>> x_train, x_test, y_train, y_test = load_digits_pca()
    >>> x_train.shape, x_test.shape, sorted(set(y_train.tolist()))
    ((273, 8), (91, 8), [0, 1])
    """
    from sklearn.datasets import load_digits

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction between 0 and 1, got {test_size!r}")
    x, y = load_digits(return_X_y=True)  # bundled with scikit-learn: no download
    x, y = _select(x.astype(np.float64), y.astype(np.int64), classes, known=10)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    x_train, x_test, pipeline = _reduce(x_train, x_test, n_components, scale, seed)
    out = (x_train.astype(dtype), x_test.astype(dtype), y_train, y_test)
    return (*out, pipeline) if return_pipeline else out


# ------------------------------------------------------------- Fashion-MNIST
def fashion_mnist_paths(path: str | os.PathLike | None = None) -> list[Path]:
    """Where :func:`load_fashion_mnist` looks: ``path`` if given; otherwise
    ``$QSTORE_FASHION_MNIST`` (when set), then ``~/.keras/datasets/fashion-mnist``
    (where ``keras.datasets.fashion_mnist.load_data()`` keeps its download)."""
    if path is not None:
        return [Path(path).expanduser()]
    paths = []
    if os.environ.get(FASHION_MNIST_ENV):
        paths.append(Path(os.environ[FASHION_MNIST_ENV]).expanduser())
    paths.append(Path("~/.keras/datasets/fashion-mnist").expanduser())
    return paths


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or uncompressed): images ``(n, rows, cols)`` or
    labels ``(n,)``, as uint8.

    Raises
    ------
    ValueError
        If the file is not an unsigned-byte IDX file or is cut short.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file (magic bytes {data[:4].hex() or 'none'}, "
            "expected 0000 08 followed by the number of dimensions)"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is cut short inside its header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != size:
        raise ValueError(
            f"{path} holds {len(data) - header} bytes of data; its header announces shape "
            f"{shape} = {size} bytes (a truncated or mismatched file)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_location(location: Path) -> dict[str, np.ndarray] | None:
    """The four arrays from a ``.npz`` file or a folder, ``None`` if not there."""
    npz = None
    if location.is_file():
        npz = location
    elif location.is_dir():
        files = {key: _idx_file(location, stem) for key, stem in FASHION_MNIST_FILES.items()}
        if all(files.values()):
            return {key: read_idx(file) for key, file in files.items() if file is not None}
        npz = next((location / n for n in _NPZ_NAMES if (location / n).is_file()), None)
    if npz is None:
        return None
    with np.load(npz) as archive:
        missing = [k for k in FASHION_MNIST_FILES if k not in archive.files]
        if missing:
            raise ValueError(
                f"{npz} has no array(s) {missing}; a Fashion-MNIST .npz needs x_train, "
                f"y_train, x_test and y_test (it has {archive.files})"
            )
        return {key: np.asarray(archive[key]) for key in FASHION_MNIST_FILES}


def _unavailable(searched: list[Path]) -> DatasetUnavailableError:
    listing = "\n".join(f"  - {p}" for p in searched)
    files = ", ".join(f"{stem}.gz" for stem in FASHION_MNIST_FILES.values())
    return DatasetUnavailableError(
        "Fashion-MNIST is not on this machine (qstore_pl never downloads data). Looked "
        f"in:\n{listing}\nTo provide it, copy the four IDX files ({files}; from the "
        "zalandoresearch/fashion-mnist project, or what keras.datasets.fashion_mnist."
        "load_data() stores on a machine with network access) into one folder, or save "
        "a .npz with arrays x_train, y_train, x_test, y_test; then pass path=... or set "
        f"{FASHION_MNIST_ENV} to that folder or file, or put the IDX files in "
        "~/.keras/datasets/fashion-mnist.",
        searched,
    )


def load_fashion_mnist(
    path: str | os.PathLike | None = None,
    classes: Sequence[int] | None = None,
    n_components: int | None = None,
    *,
    scale: str | None = "angle",
    seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
    dtype: npt.DTypeLike = "float32",
    return_pipeline: bool = False,
) -> tuple:
    """Fashion-MNIST from local files, optionally two classes and PCA-reduced.

    Parameters
    ----------
    path : str or PathLike, optional
        A folder with the four IDX files (``train-images-idx3-ubyte.gz`` etc., ``.gz``
        or not) or a ``fashion-mnist.npz``, or a ``.npz`` file with ``x_train``,
        ``y_train``, ``x_test``, ``y_test``. Default: see :func:`fashion_mnist_paths`.
    classes : Sequence[int], optional
        Labels to keep (see :data:`FASHION_MNIST_CLASSES`), relabelled ``0, 1, ...`` in
        this order; all ten by default.
    n_components : int, optional
        PCA-reduce to this many features (:func:`pca_pipeline`, fitted on the training
        split only). Without it, pixels scaled to ``[0, 1]``, shape ``(n, 28, 28)``.
    scale : {"angle", "amplitude", None}
        Encoding scale after PCA (ignored without ``n_components``).
    seed : int
        Seed of PCA.
    max_train, max_test : int, optional
        Keep the first this many samples of each split (after class selection).
    dtype : numpy dtype
        Of the returned features.
    return_pipeline : bool
        Also return the fitted pipeline (``None`` without ``n_components``).

    Returns
    -------
    x_train, x_test, y_train, y_test : numpy.ndarray
        Followed by the pipeline when ``return_pipeline``.

    Raises
    ------
    DatasetUnavailableError
        If none of the searched places has the data; the message lists them and how
        to provide the files.
    """
    for name, limit in (("max_train", max_train), ("max_test", max_test)):
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1
        ):
            raise ValueError(f"{name} must be a positive int or None, got {limit!r}")
    searched = fashion_mnist_paths(path)
    arrays = None
    for location in searched:
        arrays = _read_location(location)
        if arrays is not None:
            break
    if arrays is None:
        raise _unavailable(searched)
    x_train, y_train = arrays["x_train"], arrays["y_train"].astype(np.int64)
    x_test, y_test = arrays["x_test"], arrays["y_test"].astype(np.int64)
    for x, y, split in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if x.ndim != 3 or len(x) != len(y):
            raise ValueError(
                f"Fashion-MNIST {split} images have shape {x.shape} and labels "
                f"{y.shape}; expected (n, rows, cols) images and n labels"
            )
    x_train, y_train = _select(x_train, y_train, classes, known=len(FASHION_MNIST_CLASSES))
    x_test, y_test = _select(x_test, y_test, classes, known=len(FASHION_MNIST_CLASSES))
    x_train, y_train = x_train[:max_train], y_train[:max_train]
    x_test, y_test = x_test[:max_test], y_test[:max_test]
    pixels_train = x_train.astype(np.float64) / 255.0
    pixels_test = x_test.astype(np.float64) / 255.0
    pipeline = None
    if n_components is None:
        out_train, out_test = pixels_train, pixels_test
    else:
        out_train, out_test, pipeline = _reduce(
            pixels_train.reshape(len(pixels_train), -1),
            pixels_test.reshape(len(pixels_test), -1),
            n_components,
            scale,
            seed,
        )
    out = (out_train.astype(dtype), out_test.astype(dtype), y_train, y_test)
    return (*out, pipeline) if return_pipeline else out
