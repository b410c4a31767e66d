#!/usr/bin/env bash
# Set up and run every check: ruff (lint + format), mypy, the docs build (warnings as errors),
# the pytest suite, and PennyLane's device conformance suite for qstore.router and
# qstore.qsim (analytic and 10000 shots).
set -euo pipefail
. "$(dirname "$0")/_venv.sh" all,test,docs
ruff check .
ruff format --check .
mypy
scripts/docs.sh
# two pytest workers: most tests hold one core (a trial: 1,524 tests in 10 min 15 s
# with -n 2 against about 14 min in one process)
python -m pytest -q -n 2 --durations=25 "$@"
python scripts/conformance.py
