"""Bounds on what user input may make qstore_pl allocate or compute.

Circuit files (JSON, OpenQASM), configuration files and command-line inputs are
parsed with bounded time and memory: an input past a bound raises
:class:`InputLimitError` (a ``ValueError``) that names the bound and the environment
variable that raises it, instead of taking the machine's memory or hanging.

=====================  ================================  ========================================
attribute              environment variable              default and meaning
=====================  ================================  ========================================
``max_state_wires``    ``QSTORE_MAX_STATE_WIRES``        24: wires of a dense state vector built
                                                         from input (``StatePrep`` padding in a
                                                         JSON circuit, ``db query --circuit``);
                                                         2**24 amplitudes are 256 MiB
``max_wires``          ``QSTORE_MAX_WIRES``              4096: qubits an OpenQASM text declares
``max_operations``     ``QSTORE_MAX_OPERATIONS``         1,000,000: operations a parsed circuit
                                                         holds (about 400 MB of PennyLane ops)
``max_nesting``        ``QSTORE_MAX_NESTING``            100: nesting depth of a JSON circuit
``max_expression``     ``QSTORE_MAX_EXPRESSION_CHARS``   256: characters of one OpenQASM
                                                         parameter expression
``max_config_nodes``   ``QSTORE_MAX_CONFIG_NODES``       10,000: values of a YAML configuration
                                                         with its aliases expanded
=====================  ================================  ========================================

Error messages quote user input through :func:`excerpt`, so a huge input never makes
a huge message.
"""

from __future__ import annotations

import os
import reprlib
from dataclasses import dataclass, fields

from qstore_pl.exceptions import ConfigError, QstoreError

#: Characters of user input an error message quotes at most.
EXCERPT_CHARS = 80

_ENV = {
    "max_state_wires": "QSTORE_MAX_STATE_WIRES",
    "max_wires": "QSTORE_MAX_WIRES",
    "max_operations": "QSTORE_MAX_OPERATIONS",
    "max_nesting": "QSTORE_MAX_NESTING",
    "max_expression": "QSTORE_MAX_EXPRESSION_CHARS",
    "max_config_nodes": "QSTORE_MAX_CONFIG_NODES",
}


class InputLimitError(QstoreError, ValueError):
    """An input exceeds one of the bounds of :class:`Limits`."""


@dataclass(frozen=True)
class Limits:
    """The bounds in force (see the module docstring for each one's meaning)."""

    max_state_wires: int = 24
    max_wires: int = 4096
    max_operations: int = 1_000_000
    max_nesting: int = 100
    max_expression: int = 256
    max_config_nodes: int = 10_000

    @staticmethod
    def env_var(name: str) -> str:
        """The environment variable that overrides the bound ``name``."""
        return _ENV[name]

    def check(self, name: str, value: int, what: str) -> None:
        """Raise :class:`InputLimitError` when ``value`` passes the bound ``name``.

        ``what`` describes the input, e.g. ``"line 3: qreg q"``.
        """
        bound = getattr(self, name)
        if value > bound:
            raise InputLimitError(
                f"{what}: {value:,} is over the limit of {bound:,} ({name}); set "
                f"{_ENV[name]} to a larger value if this input is intended"
            )


def current_limits() -> Limits:
    """The default :class:`Limits` with the environment's overrides (read on each call,
    so a changed variable takes effect at once)."""
    values = {}
    for f in fields(Limits):
        text = os.environ.get(_ENV[f.name])
        if text is None or not text.strip():
            continue
        try:
            values[f.name] = int(text)
        except ValueError:
            values[f.name] = -1
        if values[f.name] < 1:
            raise ConfigError(f"{_ENV[f.name]}={excerpt(text)}; use a positive integer")
    return Limits(**values)


def excerpt(value: object, max_chars: int = EXCERPT_CHARS) -> str:
    """A short ``repr`` of ``value`` for error messages: at most ``max_chars``
    characters, and bounded work however large or deeply shared ``value`` is (only
    the first items of containers and the start of strings are looked at)."""
    text = _REPR.repr(value)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, EXCERPT_CHARS, EXCERPT_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
