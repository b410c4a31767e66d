"""notebooks/noisy_rehearsal.ipynb runs from top to bottom against the emulator and
shows what it claims: a free rehearsal near the emulator's noisy results, and
accuracy falling with amplitude damping but not with depolarising noise."""

import re

from test_notebooks import run_notebook


def test_noisy_rehearsal_notebook():
    printed = run_notebook("noisy_rehearsal.ipynb")
    clean = float(re.search(r"noiseless accuracy: ([0-9.]+)", printed).group(1))
    rehearsal = float(re.search(r"rehearsal accuracy: ([0-9.]+)", printed).group(1))
    emulated = float(re.search(r"emulator accuracy: ([0-9.]+)", printed).group(1))
    assert clean >= 0.8
    assert abs(rehearsal - clean) <= 0.1 and abs(emulated - clean) <= 0.15
    assert "->aria-rehearsal" in printed
    gap = float(re.search(r"largest \|rehearsal - emulator\|: ([0-9.]+)", printed).group(1))
    assert gap < 0.2  # 1000 shots and a rougher noise model on the emulator side
    assert "spent: 0.00 USD" in printed
    damping = re.search(r"AmplitudeDamping accuracy by strength: \{(.+)\}", printed).group(1)
    accuracies = [float(v.split(": ")[1]) for v in damping.split(", ")]
    assert abs(accuracies[0] - clean) < 0.01 and accuracies[-1] < clean - 0.2
