#!/usr/bin/env bash
# Set up and run the main job: train a small hybrid torch model through qstore.router
# on the local simulators and print what ran where, and why.
set -euo pipefail
. "$(dirname "$0")/_venv.sh" torch
qstore-pl quickstart "$@"
