"""Argument parsing for ``qstore-pl``: one-line errors, defaults in the help, checked values.

Kept free of heavy imports: ``--help``, ``--version`` and argument errors answer before
PennyLane or any framework is loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

#: Exit status for a usage error (argparse's, and the command line's own checks).
USAGE_ERROR = 2


class HelpFormatter(argparse.HelpFormatter):
    """Appends each option's default to its help (where it has a meaningful one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: what is wrong and where to look."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    return _bounded(text, int, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer of at least 0."""
    return _bounded(text, int, 0, "an integer >= 0")


def non_negative_float(text: str) -> float:
    """A finite number of at least 0."""
    return _bounded(text, float, 0.0, "a number >= 0")


def port(text: str) -> int:
    """A TCP port (0 picks a free one)."""
    value = _bounded(text, int, 0, "a port number from 0 to 65535")
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text}")
    return value


def _bounded(text: str, kind: type, lowest, description: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}") from None
    if not value >= lowest or value == float("inf"):  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be {description}, got {text}")
    return value


def readable_file(text: str) -> str:
    """The path of an existing, readable file."""
    path = Path(text)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"{what}: {text}")
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {err.strerror}") from None
    return text


def json_object(text: str) -> dict:
    """A JSON object given on the command line."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"key\": 1}}': {text}")
    return value


def fail(message: str) -> int:
    """Print a one-line error for a problem found after parsing; the usage-error status."""
    print(f"qstore-pl: error: {message}", file=sys.stderr)
    return USAGE_ERROR
