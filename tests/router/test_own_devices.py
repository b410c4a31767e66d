"""The table the router builds qstore's devices from agrees with the entry points that
``pyproject.toml`` registers for ``qml.device``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from qstore_pl.router.registry.own import OWN_DEVICES, device_class

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_is_the_registered_leaf_devices():
    plugins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    registered = dict(plugins["pennylane.plugins"])
    registered.pop("qstore.router")  # the router is not one of its own backends
    assert OWN_DEVICES == registered


def test_each_name_is_its_class():
    for name, path in OWN_DEVICES.items():
        module, class_name = path.split(":")
        cls = device_class(name)
        assert cls.__name__ == class_name and cls.__module__.startswith(module)
    assert device_class("default.qubit").__name__ == "DefaultQubit"  # others: entry points
    assert device_class("no.such.device") is None
