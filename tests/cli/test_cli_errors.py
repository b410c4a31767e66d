"""The command line answers help, version and bad arguments at once, in one line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from qstore_pl.cli import build_parser, format_table, main

HEAVY = ("pennylane", "torch", "jax", "tensorflow", "keras")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``qstore-pl ARGS`` in this process: exit status, stdout, stderr."""
    try:
        status = main(list(args))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def test_help_version_and_argument_errors_do_not_import_the_heavy_stack():
    """One fresh interpreter runs them all: none may load PennyLane or a framework."""
    commands = [
        ["--help"],
        ["--version"],
        ["calibrate", "--help"],
        ["db", "query", "--help"],
        ["quickstart", "--epochs", "0"],
        ["db", "query", "--state", "missing.npy"],
        ["paths"],
    ]
    probe = (
        "import contextlib, io, sys\n"
        "from qstore_pl.cli import main\n"
        f"for args in {commands!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), "
        "contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            main(args)\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_module_runs_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "qstore_pl.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("qstore-pl ")


def test_importing_the_package_is_light_and_leaves_qml_device_alone():
    probe = (
        "import sys, qstore_pl\n"
        "assert 'pennylane' not in sys.modules\n"
        "import pennylane as qml\n"
        "from pennylane.devices.device_constructor import device\n"
        "assert qml.device is device\n"
        "assert issubclass(qstore_pl.ConfigError, qstore_pl.QstoreError)\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, env={**os.environ})


def test_version(capsys):
    import qstore_pl

    status, out, _ = run_cli(capsys, "--version")
    assert status == 0
    assert out.strip() == f"qstore-pl {qstore_pl.__version__}"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["quickstart", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
        (["explain", "--qubits", "-3"], "argument --qubits: must be a positive integer, got -3"),
        (["explain", "--batch", "two"], "argument --batch: must be a positive integer, got 'two'"),
        (["db", "query", "--state", "missing.npy"], "argument --state: no such file: missing.npy"),
        (["db", "query", "--state", "."], "argument --state: is a directory: ."),
        (["calibrate", "--level", "medium"], "argument --level: invalid choice: 'medium'"),
        (["ionq-emulator", "--port", "70000"], "must be a port number from 0 to 65535"),
        (["ionq-emulator", "--latency", "nan"], "argument --latency: must be a number >= 0"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_2(capsys, args, problem):
    status, out, err = run_cli(capsys, *args)
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert problem in lines[0]
    assert "--help" in lines[0]  # where to read more


def test_an_unusable_store_path_is_one_line_naming_the_path(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for where in ("/proc/qstore-nonexistent", str(afile)):
        status, _, err = run_cli(capsys, "db", "stats", "--path", where)
        assert status == 2
        assert len(err.splitlines()) == 1, err
        assert repr(where) in err and "check the path" in err


def test_a_state_file_that_is_not_npy_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_text("not numpy")
    status, _, err = run_cli(capsys, "db", "query", "--state", str(bad), "--path", str(tmp_path))
    assert status == 2
    assert len(err.splitlines()) == 1 and "not a .npy array" in err


def test_bad_filter_json_is_an_argument_error(capsys):
    status, _, err = run_cli(capsys, "db", "query", "--state", __file__, "--filter", "{backend:")
    assert status == 2 and "argument --filter: not valid JSON" in err


def _options(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _options(sub)


def test_every_flag_has_help_and_shows_its_default():
    for parser in _options(build_parser()):
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            assert action.help, f"{parser.prog} {action.option_strings[0]} has no help text"
            text = " ".join(parser.format_help().split())
            if action.default not in (None, False):
                assert f"(default: {action.default})" in text, (parser.prog, action.dest)


def test_explain_help_says_what_w1_is(capsys):
    _, out, _ = run_cli(capsys, "explain", "--help")
    out = " ".join(out.split())
    assert "W1 is the training workload" in out
    assert "<Z> on every qubit" in out


def test_table_columns_line_up():
    rows = [("backend", "max wires"), ("qstore.batched.c64", "30"), ("x", "1000")]
    lines = format_table(rows, right=(1,)).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[1].startswith("qstore.batched.c64  ") and lines[2].endswith(" 1000")
