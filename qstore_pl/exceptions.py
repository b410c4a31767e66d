"""Exceptions raised by qstore_pl.

Every exception names the problem and, where there is one, the fix. They derive
from the standard exception a caller would naturally catch (``ValueError`` for bad
values, PennyLane's ``DeviceError`` for circuits a device cannot run), so existing
``except`` clauses keep working.
"""

from __future__ import annotations

from pennylane.exceptions import DeviceError


class QstoreError(Exception):
    """Base class of every error raised by qstore_pl."""


class ConfigError(QstoreError, ValueError):
    """A router configuration value is invalid."""


class UnknownBackendError(ConfigError, KeyError):
    """A configuration names a backend that does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class UnsupportedCircuitError(QstoreError, DeviceError):
    """No candidate backend can run a circuit (too wide, unknown gate or observable)."""


class InvalidParameterError(QstoreError, ValueError):
    """A circuit parameter is not a finite number (NaN or infinity)."""


class BackendExecutionError(QstoreError, RuntimeError):
    """Every backend allowed for a circuit batch failed to execute it."""
