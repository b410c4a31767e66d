"""Loading a saved model never spends money.

A ``.keras`` file names each layer's device, and anyone can edit that name. Loading
rebuilds a saved device only if it is a local simulator (or ``qstore.router``, whose
priced backends always go through its ledger and budget); any other device, a cloud
QPU or simulator above all, is replaced by ``default.qubit`` with a warning. To run a
loaded model elsewhere, pass the device at load time::

    model = qstore_pl.keras.load_model("m.keras", device=router)
    # or: keras.models.load_model("m.keras", custom_objects={LOAD_DEVICE: router})

A device passed that way must not be a priced backend on its own (``qstore.ionq``,
``ionq.*``): those run only through a router with a ledger.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import pennylane as qml

from qstore_pl.layers.device_choice import make_device
from qstore_pl.support.limits import excerpt

#: ``custom_objects`` key under which ``load_model`` callers pass the device for layers.
LOAD_DEVICE = "qstore_pl>device"
#: What a saved device that is not a local simulator is replaced with.
FALLBACK_DEVICE = "default.qubit"
#: Devices a saved model may name and get back: local simulators and the router.
LOCAL_DEVICES = frozenset(
    {
        "default.qubit",
        "default.mixed",
        "lightning.qubit",
        "lightning.gpu",
        "lightning.kokkos",
        "qstore.batched",
        "qstore.qsim",
        "qstore.router",
    }
)
_PRICED_PREFIXES = ("qstore.ionq", "ionq.")


class UnsafeDeviceWarning(UserWarning):
    """A saved model names a device that loading does not build."""


def load_model(
    path: str | os.PathLike,
    device: Any = None,
    custom_objects: Mapping | None = None,
    **kwargs: Any,
) -> keras.Model:
    """``keras.models.load_model`` whose quantum layers run on ``device``.

    Parameters
    ----------
    path : str or PathLike
        The ``.keras`` file.
    device : str or Device, optional
        The device for every qstore_pl layer (e.g. a ``qstore.router`` with a budget);
        default: the saved device if it is a local simulator, else ``default.qubit``.
    custom_objects : Mapping, optional
        As for Keras.
    **kwargs
        Passed to ``keras.models.load_model`` (``compile``, ``safe_mode``).
    """
    objects = dict(custom_objects or {})
    if device is not None:
        objects[LOAD_DEVICE] = device
    return keras.models.load_model(path, custom_objects=objects, **kwargs)


def rebuild_device(description: Mapping) -> qml.devices.Device:
    """The device for a saved layer described by ``description`` (name and wires).

    Raises
    ------
    ValueError
        If the device passed at load time is a priced backend, or has too few wires.
    """
    wires = description.get("wires")
    given = keras.saving.get_registered_object(LOAD_DEVICE)
    if given is not None:
        name = given if isinstance(given, str) else getattr(given, "name", "")
        if str(name).startswith(_PRICED_PREFIXES):
            raise ValueError(
                f"a loaded model cannot run on {name!r} directly: priced backends run only "
                "through a qstore.router with a ledger and budget; pass such a router"
            )
        return make_device(given, len(wires) if wires else 1)
    name = str(description.get("name"))
    if name not in LOCAL_DEVICES:
        warnings.warn(
            f"the saved model names the device {excerpt(name)}, which loading does not build (it "
            f"may spend money or send data off this machine); its layers run on "
            f"{FALLBACK_DEVICE}. Pass the device to use at load time: "
            f"qstore_pl.keras.load_model(path, device=...) or "
            f"custom_objects={{{LOAD_DEVICE!r}: device}}",
            UnsafeDeviceWarning,
            stacklevel=2,
        )
        name = FALLBACK_DEVICE
    return qml.device(name, wires=wires)
