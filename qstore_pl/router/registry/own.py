"""qstore's own leaf devices by name, built from their classes.

The router builds these devices from their classes rather than through PennyLane's
entry points (``pyproject.toml`` registers the same names for ``qml.device``), so a
checkout on ``PYTHONPATH`` and an install whose entry points predate a device build the
same thing. ``tests/router/test_own_devices.py`` checks that this table and the entry points
agree.
"""

from __future__ import annotations

import importlib
from typing import Any

import pennylane as qml
from pennylane.devices import Device, LegacyDeviceFacade
from pennylane.devices.device_constructor import plugin_devices

#: Device name -> ``module:class``.
OWN_DEVICES = {
    "qstore.qsim": "qstore_pl.devices.qsim:QsimDevice",
    "qstore.batched": "qstore_pl.devices.batched:BatchedDevice",
    "qstore.ionq": "qstore_pl.devices.ionq.device:QstoreIonQDevice",
    "qstore.aer": "qstore_pl.devices.aer:AerDevice",
}


def device_class(device_name: str) -> type | None:
    """The class of a device: qstore's from :data:`OWN_DEVICES`, others from their
    entry points; ``None`` if no installed plugin has that name."""
    if device_name in OWN_DEVICES:
        return _own_class(device_name)
    entry_point = plugin_devices.get(device_name)
    return None if entry_point is None else entry_point.load()


def _own_class(device_name: str) -> type:
    module, name = OWN_DEVICES[device_name].split(":")
    return getattr(importlib.import_module(module), name)


def build_device(device_name: str, wires: Any, **kwargs: Any):
    """``qml.device(device_name, wires=wires, **kwargs)``, qstore's devices from their
    classes."""
    if device_name not in OWN_DEVICES:
        return qml.device(device_name, wires=wires, **kwargs)
    device = _own_class(device_name)(wires=wires, **kwargs)
    # as qml.device does: a device of the legacy API (qstore.ionq) behind the new one
    return device if isinstance(device, Device) else LegacyDeviceFacade(device)
