"""Dense gates of 1..10 wires against default.qubit, each group of widths in its own process.

A 7-wire ``QubitUnitary`` through ``qstore.router`` used to overrun the batched row
kernel's fixed 64-entry scratch buffer: ``free(): invalid pointer`` at 7 wires, SIGSEGV
at 8-10. Numba checks no bounds, so such a bug kills the process; running the cases in
a subprocess turns it into a failed test. The cases (``tests/router/dense_gate_cases.py``):
plain, on permuted wires, controlled (``ControlledQubitUnitary`` and ``qml.ctrl``) and
broadcast matrices, on the router (free, and held to the batched engine in both
precisions) and on ``qstore.batched`` (row kernel and qsim kernels), with gradients of
the gates around the dense one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("dense_gate_cases.py")
REPO = SCRIPT.parents[2]

#: Widths run in one process: the widths that crashed (7-10) are never in a group
#: with the ones that did not; two processes, as each pays PennyLane's imports again.
GROUPS = [(1, 2, 3, 4, 5, 6), (7, 8, 9, 10)]

# complex128: a dense 2**k x 2**k product adds ~2**k roundings of 1e-16; complex64:
# ~6e-8 each, below 1e-5 after a 1024-term sum and the few gates around it.
DOUBLE, SINGLE = 1e-9, 1e-4
TOLERANCE = {
    "router": SINGLE,  # precision="single" lets it pick a complex64 backend
    "router-batched": DOUBLE,
    "router-batched64": SINGLE,
    "batched": DOUBLE,
    "batched-qsim": SINGLE,
}
HELD_TO_BATCHED = {"router-batched": ["qstore.batched"], "router-batched64": ["b64"]}


def _run(widths: tuple[int, ...]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QSTORE_CALIBRATION": "off"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, widths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    if done.returncode != 0:
        cause = (
            f"killed by {signal.Signals(-done.returncode).name}"
            if done.returncode < 0
            else f"exit status {done.returncode}"
        )
        pytest.fail(f"dense gates of {widths} wires: the process died ({cause})\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("widths", GROUPS, ids=lambda w: f"{w[0]}-{w[-1]}wires")
def test_dense_gates_match_default_qubit(widths):
    results = _run(widths)
    assert sorted(map(int, results)) == list(widths)
    for k, cases in results.items():
        routing = cases.pop("routing")
        expected_cases = {"plain", "permuted", "broadcast"} | (
            {"controlled", "ctrl"} if int(k) >= 2 else set()
        )
        assert set(cases) == expected_cases
        for case, per_device in cases.items():
            reference = per_device.pop("default.qubit")
            for device, tol in TOLERANCE.items():
                if device not in per_device:  # the free router skips wide controlled gates
                    assert device == "router" and case in ("controlled", "ctrl") and int(k) > 4
                    continue
                got = per_device[device]
                where = f"{k} wires, {case}, {device}"
                np.testing.assert_allclose(
                    got["values"], reference["values"], atol=tol, err_msg=where
                )
                assert ("grad" in got) == ("grad" in reference), where
                if "grad" in reference:
                    np.testing.assert_allclose(
                        got["grad"], reference["grad"], atol=tol, err_msg=where
                    )
        for device, report in routing.items():
            assert report["failures"] == {}, f"{k} wires: {device} fell back: {report}"
        for device, backends in HELD_TO_BATCHED.items():
            assert routing[device]["backends"] == backends, (k, routing)
