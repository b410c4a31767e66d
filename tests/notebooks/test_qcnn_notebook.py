"""notebooks/qcnn_cluster_state.ipynb: TFQ's QCNN example trains on circuit inputs."""

import re
from pathlib import Path

from notebook_run import execute_notebook
from notebook_run import printed as printed_by

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "qcnn_cluster_state.ipynb"


def test_qcnn_notebook_learns_to_detect_excitations():
    printed = printed_by(execute_notebook(NOTEBOOK, timeout=600))
    assert "112 training and 48 test circuits" in printed
    assert "63 trainable parameters" in printed  # the tutorial's model, symbol for symbol
    epochs = re.findall(r"epoch +\d+: +[\d.]+ s, train accuracy ([\d.]+)", printed)
    assert len(epochs) == 12
    accuracy = float(re.search(r"test accuracy: ([\d.]+)", printed).group(1))
    assert accuracy >= 0.8, printed[-2000:]  # chance: 0.5; TFQ reaches 0.79-0.83 (README)
    assert "qstore.batched" in printed  # routed to the batched engine
