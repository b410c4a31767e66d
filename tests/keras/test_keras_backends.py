"""Run the Keras-layer tests again under the Keras backends this process is not using.

KERAS_BACKEND is read once, when keras is first imported, so each backend needs its
own interpreter. The in-process run (tests/keras/keras_backends/) covers the default one.
The reruns leave out the tests marked ``keras_backend_agnostic`` (argument checks,
configs, the functional API): no backend changes what they check, and each rerun pays
for every test it repeats.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ACTIVE = os.environ.get("KERAS_BACKEND", "tensorflow")
OTHERS = [b for b in ("tensorflow", "jax", "torch") if b != ACTIVE]


@pytest.mark.parametrize("backend", OTHERS)
def test_keras_layers_pass_on_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not keras_backend_agnostic",
            str(HERE / "keras_backends"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (
        f"KERAS_BACKEND={backend}:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    )
    assert " passed" in run.stdout and "skipped" not in run.stdout
    assert " deselected" in run.stdout  # the marker reached the rerun
