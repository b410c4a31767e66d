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
python -m pytest -q --durations=25 "$@"
python scripts/conformance.py
