"""Run a function once a module has been imported, without importing it now.

``import qstore_pl`` must stay light (the command line's ``--help`` must not load
PennyLane, torch or JAX), yet qstore_pl adapts ``qml.device`` as soon as PennyLane
is there. :func:`when_imported` runs the adaptation at once when the module is
already loaded, else right after its first import finishes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback()`` once ``name`` is fully imported (now, if it already is).

    Parameters
    ----------
    name : str
        A top-level module name, e.g. ``"pennylane"``.
    callback : Callable[[], None]
        Runs once, after the module's code has run.
    """
    if name in sys.modules:
        callback()
        return
    sys.meta_path.insert(0, _AfterImportFinder(name, callback))


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``name`` with the other finders and wraps its loader; then steps aside."""

    def __init__(self, name: str, callback: Callable[[], None]):
        self.name = name
        self.callback = callback
        self._finding = threading.local()

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or getattr(self._finding, "active", False):
            return None
        self._finding.active = True  # let the real finders answer
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.active = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _CallbackLoader(spec.loader, self._done)
        return spec

    def _done(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.callback()


class _CallbackLoader(importlib.abc.Loader):
    """The module's own loader, with a callback after its code has run."""

    def __init__(self, loader, callback: Callable[[], None]):
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        # the module keeps its own loader: nothing downstream sees this wrapper
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._callback()

    def __getattr__(self, attribute):  # resources, source, is_package: the real loader's
        return getattr(self._loader, attribute)
