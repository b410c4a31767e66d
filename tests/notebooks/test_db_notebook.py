"""notebooks/state_recorder.ipynb runs from top to bottom."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "state_recorder.ipynb"


def test_state_recorder_notebook_runs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute(cwd=str(NOTEBOOK.parent))
    printed = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    # 12 training steps of a batch of 8: one recorded state per circuit of each forward pass
    assert "96 states; nearest-neighbour fidelity" in printed
    assert "delivered=96, waiting=0" in printed
