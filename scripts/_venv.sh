# Sourced by the other scripts: create (once) and activate the project's virtual
# environment, then install qstore_pl with the extras given as arguments.
# torch is pinned to 2.13.0, whose CPU wheel these machines carry; an unpinned torch
# would pull a multi-GB CUDA build. --no-compile: pip would byte-compile all ~22,000
# modules of every dependency on one core (65 s of CPU, measured on the loaded 2-core
# machine); Python compiles the ones a run imports, once, on first import.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${QSTORE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet --no-compile "torch==2.13.0" -e ".[$1]"
