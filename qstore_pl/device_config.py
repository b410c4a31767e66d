"""Let ``qml.device("qstore.router", config=...)`` take a router config.

``qml.device`` reserves its ``config`` keyword for a PennyLane ``Configuration``: it
reads ``config["main"]``, ``config["<plugin>.global"]`` and ``config[<device name>]``
and merges them into the device's keyword arguments, so a plain dict or a file path
never reaches the device (and a dict fails with ``KeyError: 'main'``).

:class:`DeviceConfig` speaks that protocol and hands the router config to the device
as its ``config`` argument. :func:`install` wraps ``qml.device`` (once, when qstore_pl
is imported) so that any other ``config`` given to a ``qstore.*`` device is wrapped
automatically (the device then validates it); every other call passes through
unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from os import PathLike
from typing import Any

import pennylane as qml
from pennylane.configuration import Configuration


class DeviceConfig:
    """A router config dressed as a PennyLane ``Configuration`` for ``qml.device``.

    Parameters
    ----------
    device_name : str
        The device that receives the config, e.g. ``"qstore.router"``.
    config : dict or str or PathLike
        The router config, or a path to a YAML/TOML file.
    """

    def __init__(self, device_name: str, config: Mapping | str | PathLike):
        self.device_name = device_name
        self.config = config

    def __getitem__(self, key: str) -> dict[str, Any]:
        return {"config": self.config} if key == self.device_name else {}

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"DeviceConfig({self.device_name!r}, ...)"


def install() -> None:
    """Wrap ``qml.device`` so ``qstore.*`` devices accept a plain ``config``."""
    original = qml.device
    if getattr(original, "_qstore_config_passthrough", False):
        return

    @functools.wraps(original)
    def device(name, *args, **kwargs):
        config = kwargs.get("config")
        if (
            isinstance(name, str)
            and name.startswith("qstore.")
            and config is not None
            and not isinstance(config, (Configuration, DeviceConfig))
        ):
            kwargs["config"] = DeviceConfig(name, config)
        return original(name, *args, **kwargs)

    device._qstore_config_passthrough = True  # type: ignore[attr-defined]  # marks our wrapper
    qml.device = device
