"""Secrets (API keys) that never show up in reprs, logs, exceptions or reports."""

from __future__ import annotations

import os
from collections.abc import Sequence


class Secret:
    """A string that prints as ``'***'``; :meth:`reveal` gives the value.

    Parameters
    ----------
    value : str
        The secret.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str) or not value:
            raise TypeError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):
        return Secret, (self._value,)


def secret_from(value: str | Secret | None, env_vars: Sequence[str]) -> Secret | None:
    """``value`` as a :class:`Secret`, else the first environment variable that is set."""
    if value:
        return Secret(value)
    for name in env_vars:
        if os.environ.get(name):
            return Secret(os.environ[name])
    return None
