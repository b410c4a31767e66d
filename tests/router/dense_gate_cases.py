"""Dense gates of given widths on every device under test, run as a script.

``python tests/router/dense_gate_cases.py 7 8`` prints one JSON line: per case and device, the
values (and gradients) the circuit gives. It runs in its own process because a
kernel that writes past a buffer corrupts the heap: the process dies (SIGSEGV,
``free(): invalid pointer``) instead of a test failing. See
``tests/router/test_dense_gates_subprocess.py``.
"""

from __future__ import annotations

import functools
import json
import sys

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

#: Devices compared with default.qubit: the router free to choose (as a user runs it),
#: the router held to the batched engine in both precisions, the batched engine itself,
#: and its qsim kernels (which hand gates on more than six wires to the row kernel).
DEVICES = {
    "router": {"name": "qstore.router"},
    "router-batched": {"name": "qstore.router", "backends": ["qstore.batched"]},
    "router-batched64": {
        "name": "qstore.router",
        "backends": [
            {"name": "b64", "type": "qstore.batched", "options": {"c_dtype": "complex64"}}
        ],
    },
    "batched": {"name": "qstore.batched"},
    "batched-qsim": {"name": "qstore.batched", "c_dtype": np.complex64, "kernel": "qsim"},
}
BROADCAST = 3
CONTROLLED = ("controlled", "ctrl")
#: lightning.qubit does not list ControlledQubitUnitary, so the free router decomposes
#: it (O(4**k) gates: 3,000 at 6 wires, seconds per call); wider ones are left to the
#: routers held to the batched engine, which take it whole.
ROUTER_CONTROLLED_MAX_WIRES = 4


@functools.cache
def _unitary(k: int, seed: int, batch: int | None = None) -> np.ndarray:
    """Dense random unitaries on ``k`` wires: phases, Fourier transforms, a permutation.

    Every entry is nonzero and the matrices differ per seed; drawing Haar unitaries
    takes a QR decomposition, seconds at 1024 x 1024 on a busy machine.
    """
    rng = np.random.default_rng(seed)
    d = 2**k
    fourier = np.fft.fft(np.eye(d)) / np.sqrt(d)

    def one():
        phases = np.exp(2j * np.pi * rng.random((3, d)))
        mixed = (phases[0, :, None] * fourier) * phases[1]
        return (mixed[rng.permutation(d)] @ fourier) * phases[2]

    return one() if batch is None else np.stack([one() for _ in range(batch)])


def _prepare(n: int) -> None:
    """An entangled, generic state, so that every matrix entry matters."""
    for w in range(n):
        qml.RY(0.4 + 0.3 * w, wires=w)
    for w in range(n - 1):
        qml.CNOT([w, w + 1])


def cases(k: int) -> dict:
    """``(apply, with_grad)`` per case: a dense gate on ``k`` of ``k + 1`` wires."""
    n = k + 1
    rng = np.random.default_rng(k)
    permuted = [int(w) for w in rng.permutation(n)[:k]]
    out = {
        "plain": (lambda: qml.QubitUnitary(_unitary(k, 1), wires=range(k)), True),
        "permuted": (lambda: qml.QubitUnitary(_unitary(k, 2), wires=permuted), True),
        "broadcast": (
            lambda: qml.QubitUnitary(_unitary(k, 3, BROADCAST), wires=permuted),
            False,
        ),
    }
    if k >= 2:
        control, targets = permuted[0], permuted[1:]
        out["controlled"] = (
            lambda: qml.ControlledQubitUnitary(_unitary(k - 1, 4), wires=[control, *targets]),
            True,
        )
        out["ctrl"] = (
            lambda: qml.ctrl(
                qml.QubitUnitary(_unitary(k - 1, 5), wires=targets),
                control=control,
                control_values=[0],
            ),
            False,
        )
    return out


def run(k: int) -> dict:
    """``{case: {device: {"values": [...], "grad": [...], "backends": ..., "failures": ...}}}``."""
    n = k + 1
    devices = {}
    for label, spec in {"default.qubit": {"name": "default.qubit"}, **DEVICES}.items():
        options = {key: v for key, v in spec.items() if key != "name"}
        devices[label] = qml.device(spec["name"], wires=n, **options)
    results = {}
    for case, (dense, with_grad) in cases(k).items():

        def body(x, y, dense=dense):
            _prepare(n)
            qml.RX(x, wires=0)
            dense()
            qml.RY(y, wires=n - 1)

        def values(x, y):
            body(x, y)
            return qml.expval(qml.Z(0)), qml.expval(qml.X(n - 1)), qml.probs(wires=[0, n - 1])

        def scalar(x, y):
            body(x, y)
            return qml.expval(qml.Z(0) @ qml.X(n - 1))

        x = np.array([0.3, -0.7, 1.1]) if case == "broadcast" else 0.3
        per_device = {}
        for label, dev in devices.items():
            if label == "router" and case in CONTROLLED and k > ROUTER_CONTROLLED_MAX_WIRES:
                continue
            out = qml.QNode(values, dev)(x, 0.5)
            entry = {"values": np.concatenate([np.ravel(v) for v in out]).tolist()}
            if with_grad:
                xy = pnp.array([0.3, 0.5], requires_grad=True)
                grad = qml.grad(lambda p, dev=dev: qml.QNode(scalar, dev)(p[0], p[1]))(xy)
                entry["grad"] = np.asarray(grad).tolist()
            per_device[label] = entry
        results[case] = per_device
    for label, dev in devices.items():
        if dev.name == "qstore.router":  # which backends ran, and whether any failed
            totals = dev.routing_report().totals
            results.setdefault("routing", {})[label] = {
                "backends": sorted(name for name, t in totals.items() if t.groups),
                "failures": {name: t.failures for name, t in totals.items() if t.failures},
            }
    return results


if __name__ == "__main__":
    print(json.dumps({int(k): run(int(k)) for k in sys.argv[1:]}))
