"""The example notebooks run from top to bottom and reach what they claim.

Each notebook is executed in a fresh kernel with a spending ledger, caches and stores
of its own (``tests/notebook_run.py``; the kernel inherits the rest of this process's
environment, so the Fashion-MNIST variable set here reaches it); the checks read what
the notebook printed. TensorBoard event
files are read back with TensorFlow's own TFRecord reader.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from idx_files import write_idx
from notebook_run import execute_notebook, printed
from tensorboard_events import read_scalars

from qstore_pl.datasets import FASHION_MNIST_ENV

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ROUTER_TAGS = ("router/executions/total", "router/seconds/total", "router/cost_usd/total")
TIME_TAGS = ("time/steps", "time/step_seconds", "time/train_seconds")


def run_notebook(name: str) -> str:
    """Execute ``notebooks/<name>`` and return everything its cells printed."""
    return printed(execute_notebook(NOTEBOOKS / name), "stdout")


def number(pattern: str, printed: str) -> float:
    """The number captured by ``pattern`` (exactly one occurrence)."""
    found = re.findall(pattern, printed)
    assert len(found) == 1, f"expected one match of {pattern!r}, found {found} in:\n{printed}"
    return float(found[0])


def check_training(printed: str, epochs: int, min_accuracy: float = 0.95) -> float:
    """Epoch lines with times, the mean time per epoch and the test accuracy."""
    seconds = [
        float(s) for s in re.findall(rf"epoch \d+/{epochs}: ([0-9.]+) s, loss [0-9.]+", printed)
    ]
    assert len(seconds) == epochs, printed
    per_epoch = number(r"time per epoch: ([0-9.]+) s", printed)
    assert per_epoch == pytest.approx(np.mean(seconds), abs=0.01)
    accuracy = number(r"test accuracy: ([0-9.]+)", printed)
    assert min_accuracy <= accuracy <= 1.0, printed
    return accuracy


def check_tensorboard(printed: str, epochs: int, extra_tags: tuple[str, ...]) -> dict:
    """The printed log folder holds one scalar set per epoch with the printed tags."""
    log_dir = Path(re.search(r"log dir: (\S+)", printed).group(1))
    try:
        scalars = read_scalars(log_dir)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    assert sorted(scalars) == list(range(epochs))
    listed = re.search(r"TensorBoard tags written: (.+)", printed).group(1).split(", ")
    for tag in (*ROUTER_TAGS, *TIME_TAGS, *extra_tags):
        assert tag in listed
        assert all(tag in scalars[step] for step in range(epochs))
    for step in range(epochs):
        assert scalars[step]["router/executions/total"] > 0
        assert scalars[step]["time/steps"] > 0
        assert scalars[step]["router/cost_usd/total"] == 0.0  # local simulators are free
    return scalars


def test_quickstart():
    printed = run_notebook("quickstart.ipynb")
    assert "<RouterDevice wires=4" in printed
    # explain() lists the candidates and the choice for the forward pass + VJP
    assert "forward + vjp" in printed and "chosen: " in printed
    check_training(printed, epochs=3)
    assert "qstore.router: what ran where" in printed
    assert "qstore.router: cost report" in printed and "(no priced executions yet)" in printed


def test_digits_keras():
    printed = run_notebook("digits_keras.ipynb")
    check_training(printed, epochs=3)
    check_tensorboard(printed, epochs=3, extra_tags=("epoch/loss", "epoch/accuracy"))
    assert "same predictions: True" in printed
    assert number(r"max \|logit difference\| ([0-9.e+-]+)", printed) < 1e-5


def test_digits_torch():
    printed = run_notebook("digits_torch.ipynb")
    accuracy = check_training(printed, epochs=3)
    scalars = check_tensorboard(printed, epochs=3, extra_tags=("epoch/test_accuracy",))
    assert scalars[2]["epoch/test_accuracy"] == pytest.approx(accuracy, abs=1e-3)


def test_digits_jax():
    printed = run_notebook("digits_jax.ipynb")
    accuracy = check_training(printed, epochs=3)
    scalars = check_tensorboard(printed, epochs=3, extra_tags=("epoch/test_accuracy",))
    assert scalars[2]["epoch/test_accuracy"] == pytest.approx(accuracy, abs=1e-3)
    # 8 full batches of 32 per epoch (the 17 left over are skipped)
    assert all(scalars[step]["time/steps"] == 8 for step in range(3))
    # the batch reaches the router whole: one forward run and one VJP run, both on the
    # compiled path
    assert re.search(r"router runs in one training step: 2 \(forward and VJP\)", printed)
    assert "(compiled path)" in printed


def test_fashion_mnist_without_data_says_where_it_looked(tmp_path, monkeypatch):
    empty = tmp_path / "fashion-mnist"
    empty.mkdir()
    monkeypatch.setenv(FASHION_MNIST_ENV, str(empty))
    home = tmp_path / "home"  # no ~/.keras copy either
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    printed = run_notebook("fashion_mnist.ipynb")
    assert "Fashion-MNIST is not available, so the cells below skip training." in printed
    assert "Fashion-MNIST is not on this machine" in printed
    assert f"  - {empty}\n" in printed
    assert f"set {FASHION_MNIST_ENV} to that folder" in printed
    assert "skipped: no Fashion-MNIST data" in printed
    assert "test accuracy" not in printed


def fake_fashion_mnist(folder: Path, seed: int = 0) -> None:
    """Real-format IDX files: labels 0 .. 3, where class 0 (T-shirt/top) is bright in
    the top half, class 1 (Trouser) in the bottom half and the others are noise."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", 240), ("t10k", 80)):
        labels = np.arange(n) % 4
        images = rng.integers(0, 60, (n, 28, 28))
        images[labels == 0, :14] += 150
        images[labels == 1, 14:] += 150
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)


def test_fashion_mnist_trains_when_the_files_are_there(tmp_path, monkeypatch):
    fake_fashion_mnist(tmp_path)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    printed = run_notebook("fashion_mnist.ipynb")
    # classes 0 and 1 of 240 / 80 samples with labels 0 .. 3
    assert "T-shirt/top vs Trouser: 120 training and 40 test samples, 8 features" in printed
    check_training(printed, epochs=3, min_accuracy=0.95)
    assert "skipped" not in printed
