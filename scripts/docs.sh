#!/usr/bin/env bash
# Build the documentation (guides + API reference from the docstrings) with warnings as
# errors. Output goes to a temporary directory unless a directory is given:
#   scripts/docs.sh            # check only
#   scripts/docs.sh site/      # keep the HTML in site/
# Run it inside the project's environment (scripts/test.sh does; `pip install -e ".[docs]"`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-}"
if [ -z "$out" ]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
python -m mkdocs build --strict --quiet --site-dir "$out"
