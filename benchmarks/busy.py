"""Busy processes beside a measurement: the benchmarks report an idle machine and
one with competing busy processes side by side (``--load``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` processes that keep a core busy each, for as long as the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def add_load_option(parser: argparse.ArgumentParser, beside: str) -> None:
    """``--load``: the counts of busy processes to measure ``beside`` (0: as the machine is)."""
    parser.add_argument(
        "--load",
        type=int,
        nargs="+",
        default=[0],
        help=f"busy processes beside {beside}, e.g. 0 1 (default: 0)",
    )
