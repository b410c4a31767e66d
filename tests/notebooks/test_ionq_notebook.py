"""notebooks/ionq_cost_optimized.ipynb runs from top to bottom against the emulator."""

from pathlib import Path

from notebook_run import execute_notebook
from notebook_run import printed as printed_by

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "ionq_cost_optimized.ipynb"


def test_cost_optimized_notebook_runs_within_budget():
    notebook = execute_notebook(NOTEBOOK)
    printed = printed_by(notebook)
    assert "param-shift" in printed and "spsa" in printed
    # four validations at the 12.42 USD job minimum fit the 60 USD budget; the fifth
    # would not, so it ran on the fallback chain and spending stayed where it was
    assert "step 7: validation accuracy" in printed and "spent 49.67 USD" in printed
    assert "step 9: validation accuracy" in printed
    assert printed.count("spent 49.67 USD") == 2
    assert "budget: 60.00 USD, remaining 10.33 USD" in printed
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert images, "the spend plot is drawn"
