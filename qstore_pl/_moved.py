"""Old import paths of modules moved in 0.2 (issue 13), kept working for one release.

Importing an old path (``import qstore_pl.devices.router``) emits a
``DeprecationWarning`` that names the new path and hands back the module at its new
home: the very same module object, so patches and ``isinstance`` checks made through
either name agree. The aliases live in this one table, not in stub files at the old
paths, so the old files are plain renames in git's history. A module that became a
package of the same name (``qstore_pl.datasets``, ``qstore_pl.cli``,
``qstore_pl.router.calibration``) keeps its names through
:func:`moved_attributes`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable, Mapping
from types import FrameType, ModuleType
from typing import Any

#: Old module path -> new module path (remove in 0.3).
MOVED_MODULES: dict[str, str] = {
    "qstore_pl.atomic_file": "qstore_pl.support.atomic_file",
    "qstore_pl.circuit_batch": "qstore_pl.layers.circuit_batch",
    "qstore_pl.circuits.datasets": "qstore_pl.datasets.circuits",
    "qstore_pl.cli_args": "qstore_pl.cli.args",
    "qstore_pl.db.commands": "qstore_pl.cli.db",
    "qstore_pl.device_choice": "qstore_pl.layers.device_choice",
    "qstore_pl.devices.backend": "qstore_pl.router.execution.adapter",
    "qstore_pl.devices.calibrate": "qstore_pl.router.calibration.measure",
    "qstore_pl.devices.dask_executor": "qstore_pl.router.execution.dask",
    "qstore_pl.devices.differentiation": "qstore_pl.router.preprocessing.differentiation",
    "qstore_pl.devices.executors": "qstore_pl.router.execution.executors",
    "qstore_pl.devices.faults": "qstore_pl.router.execution.faults",
    "qstore_pl.devices.ionq.reconcile": "qstore_pl.router.money.reconcile",
    "qstore_pl.devices.ionq.spec": "qstore_pl.router.registry.ionq",
    "qstore_pl.devices.ionq.status": "qstore_pl.router.registry.ionq_status",
    "qstore_pl.devices.local_backends": "qstore_pl.router.registry.builtin",
    "qstore_pl.devices.router": "qstore_pl.router.device",
    "qstore_pl.devices.router_pipeline": "qstore_pl.router.preprocessing.pipeline",
    "qstore_pl.devices.spending": "qstore_pl.router.money.spending",
    "qstore_pl.devices.tape_packing": "qstore_pl.router.execution.packing",
    "qstore_pl.ionq": "qstore_pl.devices.ionq",
    "qstore_pl.ionq.emulator": "qstore_pl.devices.ionq.emulator",
    "qstore_pl.ionq.native": "qstore_pl.circuits.ionq_native",
    "qstore_pl.ionq.simulate": "qstore_pl.devices.ionq.simulate",
    "qstore_pl.layer_circuit": "qstore_pl.layers.circuit",
    "qstore_pl.limits": "qstore_pl.support.limits",
    "qstore_pl.monitoring": "qstore_pl.tensorboard.metrics",
    "qstore_pl.paths": "qstore_pl.support.paths",
    "qstore_pl.progress": "qstore_pl.support.progress",
    "qstore_pl.qnode_spec": "qstore_pl.layers.qnode_spec",
    "qstore_pl.quantum_datasets": "qstore_pl.datasets.quantum",
    "qstore_pl.quickstart": "qstore_pl.cli.quickstart",
    "qstore_pl.router.capabilities": "qstore_pl.router.routing.capabilities",
    "qstore_pl.router.cost_estimate": "qstore_pl.router.money.estimate",
    "qstore_pl.router.cost_report": "qstore_pl.router.money.report",
    "qstore_pl.router.ledger": "qstore_pl.router.money.ledger",
    "qstore_pl.router.policy": "qstore_pl.router.routing.policy",
    "qstore_pl.router.refusal": "qstore_pl.router.routing.refusal",
    "qstore_pl.router.pricing": "qstore_pl.devices.ionq.pricing",
    "qstore_pl.router.secret": "qstore_pl.support.secret",
    "qstore_pl.router.spec": "qstore_pl.router.routing.spec",
    "qstore_pl.router.time_model": "qstore_pl.router.routing.time_model",
    "qstore_pl.router.workload": "qstore_pl.router.routing.workload",
    "qstore_pl.threads": "qstore_pl.support.threads",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; import it from there ({old} goes in qstore_pl 0.3)",
        DeprecationWarning,
        stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The stack level of the line that imported the old path: past this file and the
    import machinery, whose frames ``warnings`` does not count."""
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and (_internal(frame) or frame.f_code.co_filename == __file__):
        frame = frame.f_back
        if frame is not None and not _internal(frame):
            level += 1
    return level


def _internal(frame: FrameType) -> bool:
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new path."""

    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(spec.name, self.new)
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the alias's spec on the module; give its own back
        module.__spec__ = self._spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        new = MOVED_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Answer the old paths (idempotent; called by ``import qstore_pl``)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())


def moved_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves names moved out of ``package``.

    Parameters
    ----------
    package : str
        The module whose old names are served (its ``__name__``).
    homes : Mapping[str, str]
        Name -> the module that now defines it; each use warns and names that module.
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        _warn(f"{package}.{name}", f"{home}.{name}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
