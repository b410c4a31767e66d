"""Turn a layer's ``device`` argument (a name or a device) into a device."""

from __future__ import annotations

import pennylane as qml


def make_device(device, n_qubits: int):
    """``device`` as a PennyLane device with at least ``n_qubits`` wires.

    Parameters
    ----------
    device : str or qml.devices.Device
        A device name (``"qstore.router"``, ``"default.qubit"``, ...) or a device.
    n_qubits : int
        Wires the layer's circuit uses.
    """
    if isinstance(device, str):
        return qml.device(device, wires=n_qubits)
    wires = getattr(device, "wires", None)
    if wires is not None and len(wires) < n_qubits:
        raise ValueError(
            f"the device has {len(wires)} wires but the layer needs {n_qubits}; "
            f"create it with wires={n_qubits}"
        )
    return device
