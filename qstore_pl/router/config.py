"""Router configuration: load from a dict or a YAML/TOML file, validate, normalise.

Every invalid value raises :class:`~qstore_pl.exceptions.ConfigError` naming the key,
the value and what would be accepted.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from qstore_pl.exceptions import ConfigError
from qstore_pl.router.calibration import CALIBRATION_MODES
from qstore_pl.router.capabilities import PRECISIONS

#: Backend type that stands for "every local simulator that is installed".
AUTO = "auto"

_TOP_LEVEL_KEYS = (
    "backends",
    "routing_strategy",
    "precision",
    "fallback",
    "executor",
    "calibration",
)
_BACKEND_KEYS = ("name", "type", "options")
_EXECUTOR_KINDS = ("serial", "dask")
#: Options of each executor kind and the check each value must pass.
_EXECUTOR_OPTIONS = {
    "serial": {},
    "dask": {
        "address": (lambda v: isinstance(v, str) and "://" in v, "a 'tcp://host:port' string"),
        "n_workers": (lambda v: type(v) is int and v > 0, "a positive integer"),
        "chunks_per_worker": (lambda v: type(v) is int and v > 0, "a positive integer"),
        "retries": (lambda v: type(v) is int and v >= 0, "a non-negative integer"),
        "progress": (lambda v: isinstance(v, bool), "true or false"),
        "timeout": (lambda v: type(v) in (int, float) and v > 0, "a positive number"),
    },
}
#: Scheduler address that makes the Dask executor the default.
DASK_ADDRESS_ENV = "QSTORE_DASK_ADDRESS"


@dataclass(frozen=True)
class BackendConfig:
    """One entry of ``config["backends"]``.

    Attributes
    ----------
    name : str
        Name the router reports for this backend.
    type : str
        Backend type: a known backend name such as ``"lightning.qubit"``, or ``"auto"``.
    options : Mapping[str, Any]
        Keyword arguments for the backend's device.
    """

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RouterConfig:
    """Validated router configuration.

    Attributes
    ----------
    backends : tuple[BackendConfig, ...]
        Candidate backends (default: every installed local simulator).
    routing_strategy : str
        Name of the routing policy.
    precision : {"single", "double"}
        Least precision accepted: ``"single"`` lets complex64 simulators run, ``"double"``
        restricts the router to complex128 ones.
    fallback : bool
        Whether a failing backend hands its work to the next-ranked one.
    executor : Mapping[str, Any]
        How routed groups are executed: ``{"kind": "serial"}``, or ``{"kind": "dask",
        "address": "tcp://host:8786"}`` to fan them out over a Dask cluster (the
        default when ``QSTORE_DASK_ADDRESS`` is set).
    calibration : {"auto", "off"}
        ``"auto"``: time models measured on this machine (a quick calibration runs on
        first use; ``qstore-pl calibrate`` runs the full one). ``"off"``: built-in models.
    """

    backends: tuple[BackendConfig, ...] = (BackendConfig(name=AUTO, type=AUTO),)
    routing_strategy: str = "performance"
    precision: str = "single"
    fallback: bool = True
    executor: Mapping[str, Any] = field(default_factory=lambda: {"kind": "serial"})
    calibration: str = "auto"


def load_config(config: Mapping | str | PathLike | None = None, **overrides: Any) -> RouterConfig:
    """Build a :class:`RouterConfig` from a dict, a YAML/TOML path, or ``None``.

    Parameters
    ----------
    config : dict or str or PathLike, optional
        The configuration, or a path to a ``.yaml``/``.yml``/``.toml`` file holding it.
    **overrides
        Top-level keys that replace those of ``config``.

    Raises
    ------
    ConfigError
        If the file cannot be read or any value is invalid.
    """
    if config is None:
        config = {}
    elif isinstance(config, (str, PathLike)):
        config = _read_file(Path(config))
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"config must be a dict or a path to a YAML/TOML file, got {type(config).__name__}"
        )
    config = {**config, **overrides}
    _reject_unknown(config, _TOP_LEVEL_KEYS, "config")

    precision = config.get("precision", "single")
    if precision not in PRECISIONS:
        raise ConfigError(f"config['precision'] = {precision!r}; choose one of {PRECISIONS}")
    strategy = config.get("routing_strategy", "performance")
    if not isinstance(strategy, str):
        raise ConfigError(f"config['routing_strategy'] must be a string, got {strategy!r}")
    fallback = config.get("fallback", True)
    if not isinstance(fallback, bool):
        raise ConfigError(f"config['fallback'] must be true or false, got {fallback!r}")
    calibration = config.get("calibration", "auto")
    if calibration not in CALIBRATION_MODES:
        raise ConfigError(
            f"config['calibration'] = {calibration!r}; choose one of {CALIBRATION_MODES}"
        )
    return RouterConfig(
        calibration=calibration,
        backends=_parse_backends(config.get("backends", AUTO)),
        routing_strategy=strategy,
        precision=precision,
        fallback=fallback,
        executor=_parse_executor(config.get("executor", _default_executor())),
    )


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigError(f"config file {str(path)!r} must end in .yaml, .yml or .toml")
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {str(path)!r}: {err.strerror}") from err
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {str(path)!r} is not valid {suffix[1:]}: {err}") from err


def _parse_backends(value: Any) -> tuple[BackendConfig, ...]:
    if value == AUTO:
        value = [AUTO]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigError(
            "config['backends'] must be 'auto' or a non-empty list of backend names or "
            f"{{'name', 'type', 'options'}} entries, got {value!r}"
        )
    entries = []
    for i, item in enumerate(value):
        where = f"config['backends'][{i}]"
        if isinstance(item, str):
            entries.append(BackendConfig(name=item, type=item))
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} must be a name or a dict, got {item!r}")
        _reject_unknown(item, _BACKEND_KEYS, where)
        name = item.get("name", item.get("type"))
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where} needs a 'name' (a non-empty string)")
        kind = item.get("type", name)
        if not isinstance(kind, str):
            raise ConfigError(f"{where}['type'] must be a string, got {kind!r}")
        options = item.get("options", {})
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}['options'] must be a dict, got {options!r}")
        entries.append(BackendConfig(name=name, type=kind, options=dict(options)))
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"config['backends'] names must be unique; repeated: {duplicates}")
    return tuple(entries)


def _default_executor() -> dict[str, Any]:
    address = os.environ.get(DASK_ADDRESS_ENV)
    return {"kind": "dask", "address": address} if address else {"kind": "serial"}


def _parse_executor(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping) or value.get("kind") not in _EXECUTOR_KINDS:
        raise ConfigError(
            f"config['executor'] = {value!r}; use {{'kind': k}} with k in {_EXECUTOR_KINDS}"
        )
    options = _EXECUTOR_OPTIONS[value["kind"]]
    _reject_unknown(value, ("kind", *options), "config['executor']")
    for key, (valid, expected) in options.items():
        if key in value and not valid(value[key]):
            raise ConfigError(f"config['executor'][{key!r}] = {value[key]!r}; use {expected}")
    value = dict(value)
    local = "address" in value or "n_workers" in value
    if value["kind"] == "dask" and not local and os.environ.get(DASK_ADDRESS_ENV):
        value["address"] = os.environ[DASK_ADDRESS_ENV]
    if value.get("address") and "n_workers" in value:
        raise ConfigError(
            "config['executor'] has both 'address' and 'n_workers': n_workers sizes a local "
            "cluster the router starts; a cluster given by address is sized by whoever runs it"
        )
    return value


def _reject_unknown(mapping: Mapping, allowed: Sequence[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown key {key!r} in {where}{hint}; valid keys: {', '.join(allowed)}"
            )
