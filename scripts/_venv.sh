# Sourced by the other scripts: create (once) and activate the project's virtual
# environment, then install qstore_pl with the extras given as arguments.
# torch is pinned to 2.13.0, whose CPU wheel these machines carry; an unpinned torch
# would pull a multi-GB CUDA build. --no-compile: pip would byte-compile all ~22,000
# modules of every dependency on one core (65 s of CPU); compileall below does it on
# every core (38 s on two).
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
# These machines set PYTHONDONTWRITEBYTECODE=1, so Python never caches the bytecode of
# what it imports: without this step every process (a pytest worker, a notebook kernel,
# a Dask worker) compiles PennyLane, cirq, jax... again, 12 s before its first line
# runs (4 s from bytecode). Later runs only check (about 1 s, one core). A few files
# written for newer Pythons (torch's py312 tests) fail to compile; nothing imports them.
stamp="$VENV/.bytecode-compiled"
if [ -e "$stamp" ]; then workers=1; else workers=0; fi
python -m compileall -qq -j "$workers" "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" qstore_pl || true
touch "$stamp"
