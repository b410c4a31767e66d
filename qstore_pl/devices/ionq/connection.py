"""Where IonQ is and how to sign in: the one place that knows IonQ's base URL.

pennylane-ionq hard-codes ``https://api.ionq.co/v0.4`` as a class attribute; our device
gives each API client its own base URL instead, from the backend option ``url``, else
``QSTORE_IONQ_URL`` (e.g. the offline emulator), else IonQ's cloud.
"""

from __future__ import annotations

import os

from qstore_pl.exceptions import ConfigError
from qstore_pl.support.secret import Secret, secret_from

#: Points every IonQ backend at another server, e.g. ``http://127.0.0.1:8080``.
URL_ENV = "QSTORE_IONQ_URL"
IONQ_CLOUD = "https://api.ionq.co"
API_VERSION = "v0.4"
API_KEY_ENVS = ("PENNYLANE_IONQ_API_KEY", "IONQ_API_KEY")


def base_url(url: str | None = None) -> str:
    """The server's URL without the API version (option, else env, else IonQ's cloud)."""
    return (url or os.environ.get(URL_ENV) or IONQ_CLOUD).rstrip("/")


def api_url(url: str | None = None) -> str:
    """The versioned API root that pennylane-ionq's client joins paths to."""
    return f"{base_url(url)}/{API_VERSION}"


def api_key(value: str | Secret | None = None) -> Secret:
    """The API key: the given one, else ``PENNYLANE_IONQ_API_KEY`` or ``IONQ_API_KEY``.

    Raises
    ------
    ConfigError
        If there is none (the message names where to put it, never a value).
    """
    key = secret_from(value, API_KEY_ENVS)
    if key is None:
        raise ConfigError(
            "no IonQ API key: set PENNYLANE_IONQ_API_KEY or IONQ_API_KEY, or the backend "
            "option 'api_key'"
        )
    return key
