"""Optional SDKs (Qiskit, Cirq) imported on first use, with an error naming the extra.

The converters live in :mod:`qstore_pl.circuits` whether or not those SDKs are
installed; only calling one needs its SDK.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def import_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{feature} needs {module.split('.')[0]}, which is not installed; install it "
            f"with pip install 'qstore_pl[{extra}]'"
        ) from err
