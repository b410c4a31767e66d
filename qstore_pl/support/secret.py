"""Secrets (API keys) that never show up in reprs, logs, exceptions, reports or pickles.

A :class:`Secret` prints as ``'***'``. Pickled (for a Dask worker, say) it carries a
reference, never the value: the name of the environment variable it was read from,
which the receiving process reads from its own environment, or, for a key written
into a config, a token that only the process holding the key can resolve. Elsewhere
:meth:`Secret.reveal` raises an error that says which variable to set.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from qstore_pl.exceptions import ConfigError
from qstore_pl.support.limits import excerpt

#: Mapping keys whose values are shown as ``'***'`` in messages.
SECRET_KEY_PATTERN = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)
_HIDDEN = "***"
# keys written into configs, by token: resolvable only in the process that read them
_LITERALS: dict[str, str] = {}


class Secret:
    """A string that prints as ``'***'``; :meth:`reveal` gives the value.

    Parameters
    ----------
    value : str
        The secret.
    env : str, optional
        The environment variable it was read from; a pickled copy reads that variable
        in the receiving process.
    """

    __slots__ = ("_env", "_token", "_value")
    _env: str | None

    def __init__(self, value: str | Secret, env: str | None = None):
        if isinstance(value, Secret):
            env = env or value._env
            value = value.reveal()
        if not isinstance(value, str) or not value:
            raise TypeError("a secret must be a non-empty string")
        self._value: str | None = value
        self._env = env
        self._token: str | None = None

    @classmethod
    def from_env(cls, name: str) -> Secret | None:
        """The value of environment variable ``name`` (``None`` if unset or empty)."""
        value = os.environ.get(name)
        return cls(value, env=name) if value else None

    def reveal(self) -> str:
        """The secret value, for the one place that sends it.

        Raises
        ------
        ConfigError
            In a process that received this secret pickled and cannot resolve it (the
            environment variable it names is not set here).
        """
        if self._value is not None:
            return self._value
        value = os.environ.get(self._env) if self._env else _LITERALS.get(self._token or "")
        if not value:
            where = (
                f"set {self._env} in this process's environment"
                if self._env
                else "API keys written into a config stay in the process that read it; "
                "give the key through an environment variable that every worker sets"
            )
            raise ConfigError(f"an API key sent from another process is not available: {where}")
        return value

    @property
    def available(self) -> bool:
        """Whether :meth:`reveal` gives a value in this process."""
        try:
            self.reveal()
        except ConfigError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Secret('{_HIDDEN}')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        if not isinstance(other, Secret):
            return False
        if self.available and other.available:
            return other.reveal() == self.reveal()
        return (self._env, self._token) == (other._env, other._token)

    def __hash__(self) -> int:
        return hash(Secret)  # equal secrets may come from different sources

    def __reduce__(self):
        # the pickle names where the value lives, never the value
        if self._env is None and self._token is None and self._value is not None:
            self._token = uuid.uuid4().hex
            _LITERALS[self._token] = self._value
        return _unpickled, (self._env, self._token)


def _unpickled(env: str | None, token: str | None) -> Secret:
    secret = Secret.__new__(Secret)
    secret._env, secret._token = env, token
    secret._value = _LITERALS.get(token) if token else None  # same process: known
    return secret


def secret_from(value: str | Secret | None, env_vars: Sequence[str]) -> Secret | None:
    """``value`` as a :class:`Secret`, else the first environment variable that is set.

    A secret received from another process that cannot be resolved here gives way to
    this process's own environment variables.
    """
    unresolved = isinstance(value, Secret) and not value.available
    if value and not unresolved:
        return Secret(value)
    found = next((s for s in map(Secret.from_env, env_vars) if s is not None), None)
    if found is None and isinstance(value, Secret) and unresolved:
        value.reveal()  # raises: says what to set
    return found


def redacted(value: Any) -> Any:
    """``value`` for an error message: values under secret-looking keys (``api_key``,
    ``token``, ...), in mappings or as ``(key, value)`` pairs, and :class:`Secret`
    objects shown as ``'***'``, in nested mappings and lists too."""
    if isinstance(value, Secret):
        return _HIDDEN
    if isinstance(value, Mapping):
        return {
            k: _HIDDEN if SECRET_KEY_PATTERN.search(str(k)) else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and isinstance(value[0], str) and SECRET_KEY_PATTERN.search(value[0]):
            pair = (value[0], _HIDDEN)  # options written as pairs, not a dict
            return pair if isinstance(value, tuple) else list(pair)
        return type(value)(redacted(v) for v in value)
    return value


def quoted(value: Any) -> str:
    """``value`` as an error message quotes it: :func:`redacted`, then at most a short
    excerpt (:func:`qstore_pl.support.limits.excerpt`), so neither a key nor a huge input
    reaches the message.

    Parameters
    ----------
    value : Any
        A user-supplied value, e.g. an invalid configuration entry.

    Returns
    -------
    str
        A ``repr``-style excerpt with secret-looking values shown as ``'***'``.
    """
    return excerpt(redacted(value))
