"""notebooks/quantum_model.ipynb: quote, fit, evaluate, plot, save/load, and a priced
run refused before it submits anything (offline IonQ emulator)."""

import re

from test_notebooks import number, run_notebook


def test_quantum_model_notebook():
    printed = run_notebook("quantum_model.ipynb")
    assert "gradient: adjoint" in printed
    assert number(r"test accuracy: ([0-9.]+)", printed) >= 0.9
    ran, quoted = re.search(r"circuits run: (\d+) \(quoted: (\d+)", printed).groups()
    assert ran == quoted
    assert len(re.findall(r"epoch \d: loss [0-9.]+", printed)) == 3
    assert "same predictions: True" in printed
    # on Aria the parameter-shift rule is over the 500 USD budget: SPSA is quoted, and
    # is over it too, so fit refuses and nothing reaches the (emulated) provider
    assert "gradient: spsa (the parameter-shift rule" in printed
    refused = number(r"refused: training is quoted at ([0-9.]+) USD", printed)
    assert refused > 500.0
    assert "Nothing was submitted" in printed and "jobs submitted: 0" in printed
