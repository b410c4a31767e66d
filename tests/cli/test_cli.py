"""The qstore-pl command and the quickstart it runs."""

import re
import subprocess
import sys

import pytest

from qstore_pl.cli import main
from qstore_pl.cli.quickstart import run, two_moons


def test_quickstart_trains_and_reports_where_it_ran():
    result = run(n_qubits=3, n_layers=1, epochs=4, samples=64, batch_size=16, progress=False)
    assert len(result.losses) == 4
    assert result.losses[-1] < result.losses[0]
    assert result.train_accuracy > 0.6
    assert "what ran where" in result.report
    assert re.search(r"total\s+0\.00\b", result.cost_report), "local simulators are free"
    assert "forward + vjp" in result.explanation
    assert "chosen:" in result.explanation


def test_two_moons_is_balanced_and_scaled():
    x, y = two_moons(100)
    assert x.shape == (100, 2) and y.sum() == 50
    assert x.min() >= 0 and x.max() <= 3.1416


def test_explain_command_prints_candidates(capsys):
    assert main(["explain", "--qubits", "4", "--layers", "1", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "W1 workload: 4 qubits" in out and "chosen:" in out and "lightning.qubit" in out


def test_backends_command_lists_local_simulators(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "lightning.qubit" in out and "default.qubit" in out


def test_bad_config_is_a_clean_error(capsys, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("backends: [nonsense.device]\n")
    assert main(["backends", "--config", str(path)]) == 2
    assert "unknown backend 'nonsense.device'" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["quickstart", "--help"]])
def test_console_script_is_installed(args):
    out = subprocess.run(
        [sys.executable, "-m", "qstore_pl.cli", *args], capture_output=True, text=True, check=True
    )
    assert "qstore-pl" in out.stdout
