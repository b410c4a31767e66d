"""notebooks/state_recorder.ipynb runs from top to bottom."""

from pathlib import Path

from notebook_run import execute_notebook
from notebook_run import printed as printed_by

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "state_recorder.ipynb"


def test_state_recorder_notebook_runs():
    printed = printed_by(execute_notebook(NOTEBOOK))
    # 12 training steps of a batch of 8: one recorded state per circuit of each forward pass
    assert "96 states; nearest-neighbour fidelity" in printed
    assert "delivered=96, waiting=0" in printed
