"""Shared pieces of the IonQ, cost and budget tests: the offline IonQ emulator on
127.0.0.1 (the real pennylane-ionq client talks to it), configs, circuits."""

from __future__ import annotations

import pennylane as qml

from qstore_pl.devices.ionq.emulator import IonQEmulator

API_KEY = "sk-ionq-test-4f9d2c7e"  # must never appear in any output
FAST = {"backoff": 0.01, "job_timeout": 20.0, "retries": 2}


def emulator_server(monkeypatch):
    """A running emulator; IonQ backends point at it, with a test API key.

    Test modules make it a fixture: ``emulator = pytest.fixture(emulator_server)``.
    """
    with IonQEmulator(seed=7) as server:
        monkeypatch.setenv("QSTORE_IONQ_URL", server.url)
        monkeypatch.setenv("IONQ_API_KEY", API_KEY)
        monkeypatch.delenv("PENNYLANE_IONQ_API_KEY", raising=False)
        yield server


def ionq(name, target="simulator", **entry):
    """A backends entry for an IonQ target with quick retries."""
    options = {**FAST, **entry.pop("options", {})}
    return {"name": name, "type": "ionq", "target": target, "options": options, **entry}


def config(tmp_path, *backends, **top):
    """A router config with a ledger in ``tmp_path`` and no calibration."""
    return {"backends": list(backends), "ledger": str(tmp_path / "ledger.sqlite"), **top}


def two_qubit_circuit(dev, shots=1000):
    @qml.qnode(dev, shots=shots)
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        qml.RY(0.3, 1)
        return qml.expval(qml.Z(0) @ qml.Z(1))

    return circuit


def exact(x):
    """<Z0 Z1> of :func:`two_qubit_circuit`."""
    return two_qubit_circuit(qml.device("default.qubit"), shots=None)(x)


def price(counts, shots, circuits=1, c1=0.00022, c2=0.000975, minimum=12.4166):
    """The per-gate-shot formula, written out independently of the package."""
    return max(minimum, circuits * shots * (c1 * counts[0] + c2 * counts[1]))
