"""Router configuration: load from a dict or a YAML/TOML file, validate, normalise.

Every invalid value raises :class:`~qstore_pl.exceptions.ConfigError` naming the key,
the value and what would be accepted.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from qstore_pl.exceptions import ConfigError
from qstore_pl.router.calibration.fit import CALIBRATION_MODES
from qstore_pl.router.purpose import PURPOSES
from qstore_pl.router.routing.capabilities import PRECISIONS
from qstore_pl.support.limits import InputLimitError, current_limits
from qstore_pl.support.secret import Secret, quoted
from qstore_pl.support.suggest import did_you_mean

#: Backend type that stands for "every local simulator that is installed".
AUTO = "auto"

_TOP_LEVEL_KEYS = (
    "backends",
    "routing_strategy",
    "precision",
    "fallback",
    "executor",
    "calibration",
    "budget",
    "max_cost_per_batch",
    "on_budget_exceeded",
    "ledger",
    "fallback_chain",
)
_BACKEND_KEYS = (
    "name",
    "type",
    "options",
    "target",
    "use_for",
    "pricing",
    "max_queue_seconds",
    "noise_model",
)
#: What the router does when a job would pass a spending limit.
ON_BUDGET_EXCEEDED = ("raise", "fallback")
#: ``use_for`` shorthands: purposes each stands for (``None``: every purpose).
_USE_FOR_ALIASES = {"any": None, "critical_only": frozenset({"validation"})}
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
        "worker_timeout": (lambda v: type(v) in (int, float) and v > 0, "a positive number"),
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
        Keyword arguments for the backend's device (``target`` given at the top level of
        the entry lands here; an ``api_key`` is held as a :class:`Secret`).
    use_for : frozenset[str] or None
        Purposes this backend serves (see :mod:`qstore_pl.router.purpose`); ``None``: all.
    pricing : Mapping[str, Any] or None
        Overrides of the backend's default prices (see :mod:`qstore_pl.devices.ionq.pricing`).
    max_queue_seconds : float or None
        Skip the backend while its reported average queue time is longer.
    noise_model : str or None
        A named hardware noise model (``"aria-1"``, ``"forte-1"``, ...) for a
        density-matrix backend: it then rehearses the QPU run.
    """

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    use_for: frozenset[str] | None = None
    pricing: Mapping[str, Any] | None = None
    max_queue_seconds: float | None = None
    noise_model: str | None = None


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
    budget, max_cost_per_batch : float or None
        Spending limits in USD: over the whole ledger, and per job.
    on_budget_exceeded : {"raise", "fallback"}
        Raise :class:`~qstore_pl.exceptions.BudgetExceeded`, or run on the next backend
        of the fallback chain.
    ledger : str or None
        Spending ledger file (default: ``$QSTORE_LEDGER``, else the user data directory).
    fallback_chain : tuple[str, ...]
        Backend names (an ``auto`` entry's name stands for all its backends) tried in
        order after the chosen backend fails or would pass a limit. Empty: the
        policy's ranking.
    """

    backends: tuple[BackendConfig, ...] = (BackendConfig(name=AUTO, type=AUTO),)
    routing_strategy: str = "performance"
    precision: str = "single"
    fallback: bool = True
    executor: Mapping[str, Any] = field(default_factory=lambda: {"kind": "serial"})
    calibration: str = "auto"
    budget: float | None = None
    max_cost_per_batch: float | None = None
    on_budget_exceeded: str = "raise"
    ledger: str | None = None
    fallback_chain: tuple[str, ...] = ()


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
        raise ConfigError(f"config['precision'] = {quoted(precision)}; choose one of {PRECISIONS}")
    strategy = config.get("routing_strategy", "performance")
    if not isinstance(strategy, str):
        raise ConfigError(f"config['routing_strategy'] must be a string, got {quoted(strategy)}")
    fallback = config.get("fallback", True)
    if not isinstance(fallback, bool):
        raise ConfigError(f"config['fallback'] must be true or false, got {quoted(fallback)}")
    calibration = config.get("calibration", "auto")
    if calibration not in CALIBRATION_MODES:
        raise ConfigError(
            f"config['calibration'] = {quoted(calibration)}; choose one of {CALIBRATION_MODES}"
        )
    backends = _parse_backends(config.get("backends", AUTO))
    return RouterConfig(
        **_parse_spending(config, backends),
        calibration=calibration,
        backends=backends,
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
        return yaml.load(text, Loader=_BoundedYamlLoader) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        _drop_snippets(err)
        raise ConfigError(f"config file {str(path)!r} is not valid {suffix[1:]}: {err}") from err
    except InputLimitError as err:
        raise ConfigError(f"config file {str(path)!r}: {err}") from None
    except RecursionError:  # both parsers recurse per nesting level
        raise ConfigError(
            f"config file {str(path)!r} nests lists or tables too deeply to read"
        ) from None


def _drop_snippets(err: Exception) -> None:
    """Make a YAML error print line and column only: its default snippet quotes the
    offending line, which may hold an API key (the error is chained, so it prints)."""
    for mark in (getattr(err, "context_mark", None), getattr(err, "problem_mark", None)):
        if mark is not None:
            mark.buffer = None  # yaml.Mark.get_snippet gives None without a buffer


class _BoundedYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents whose aliases expand past
    ``max_config_nodes`` values ("billion laughs"): the loaded objects share the
    aliased values, but anything that walks them (validation, error messages) would
    expand them."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node, current_limits().max_config_nodes)
        return node


def _check_expanded_size(root: yaml.Node, limit: int) -> None:
    """Count the values under ``root`` with every alias expanded (each shared node is
    counted once per use, computed once), without recursion; refuse recursive aliases."""
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _yaml_children(node)
        if children_done:
            ancestors.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > limit:
                current_limits().check(
                    "max_config_nodes", sizes[key], "values with YAML aliases expanded"
                )
            continue
        if key in sizes:
            continue
        if key in ancestors:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a value that contains it", node.start_mark
            )
        ancestors.add(key)
        stack.append((node, True))
        stack += [(child, False) for child in children if id(child) not in sizes]


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _parse_backends(value: Any) -> tuple[BackendConfig, ...]:
    if value == AUTO:
        value = [AUTO]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigError(
            "config['backends'] must be 'auto' or a non-empty list of backend names or "
            f"{{'name', 'type', 'options'}} entries, got {quoted(value)}"
        )
    entries = []
    for i, item in enumerate(value):
        where = f"config['backends'][{i}]"
        if isinstance(item, str):
            entries.append(BackendConfig(name=item, type=item))
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} must be a name or a dict, got {quoted(item)}")
        _reject_unknown(item, _BACKEND_KEYS, where)
        name = item.get("name", item.get("type"))
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where} needs a 'name' (a non-empty string)")
        kind = item.get("type", name)
        if not isinstance(kind, str):
            raise ConfigError(f"{where}['type'] must be a string, got {quoted(kind)}")
        options = item.get("options", {})
        if not isinstance(options, Mapping):
            # never the value: options hold API keys, in whatever shape they were written
            raise ConfigError(f"{where}['options'] must be a dict, got a {type(options).__name__}")
        options = dict(options)
        if "target" in item:
            options["target"] = item["target"]
        if options.get("api_key") is not None:
            options["api_key"] = Secret(str(options["api_key"]))
        pricing = item.get("pricing")
        if pricing is not None and not isinstance(pricing, Mapping):
            raise ConfigError(f"{where}['pricing'] must be a dict such as {{'model': 'free'}}")
        queue = item.get("max_queue_seconds")
        if queue is not None and not _is_amount(queue):
            raise ConfigError(f"{where}['max_queue_seconds'] = {quoted(queue)}; use seconds >= 0")
        noise_model = item.get("noise_model")
        if noise_model is not None and not isinstance(noise_model, str):
            raise ConfigError(f"{where}['noise_model'] must be a name such as 'aria-1'")
        entries.append(
            BackendConfig(
                name=name,
                type=kind,
                options=options,
                use_for=_parse_use_for(item.get("use_for", "any"), where),
                pricing=dict(pricing) if pricing is not None else None,
                max_queue_seconds=queue,
                noise_model=noise_model,
            )
        )
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"config['backends'] names must be unique; repeated: {duplicates}")
    return tuple(entries)


def _is_amount(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _parse_use_for(value: Any, where: str) -> frozenset[str] | None:
    if isinstance(value, str) and value in _USE_FOR_ALIASES:
        return _USE_FOR_ALIASES[value]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not names or any(n not in PURPOSES for n in names):
        raise ConfigError(
            f"{where}['use_for'] = {quoted(value)}; use one of {PURPOSES}, a list of them, "
            f"or {sorted(_USE_FOR_ALIASES)}"
        )
    return frozenset(names)


def _parse_spending(config: Mapping, backends: Sequence[BackendConfig]) -> dict[str, Any]:
    """The budget, per-batch limit, what to do beyond them, the ledger and the chain."""
    values: dict[str, Any] = {}
    for key in ("budget", "max_cost_per_batch"):
        value = config.get(key)
        if value is not None and not _is_amount(value):
            raise ConfigError(f"config[{key!r}] = {quoted(value)}; use an amount in USD (>= 0)")
        values[key] = None if value is None else float(value)
    action = config.get("on_budget_exceeded", "raise")
    if action not in ON_BUDGET_EXCEEDED:
        raise ConfigError(
            f"config['on_budget_exceeded'] = {quoted(action)}; choose one of {ON_BUDGET_EXCEEDED}"
        )
    ledger = config.get("ledger")
    if ledger is not None and not isinstance(ledger, (str, PathLike)):
        raise ConfigError(f"config['ledger'] must be a file path, got {quoted(ledger)}")
    chain = config.get("fallback_chain", ())
    if isinstance(chain, str) or not isinstance(chain, Sequence):
        raise ConfigError(
            f"config['fallback_chain'] must be a list of backend names, got {quoted(chain)}"
        )
    names = [b.name for b in backends]
    for name in chain:
        if name not in names:
            hint = did_you_mean(name, names, " (did you mean {!r}?)")
            raise ConfigError(
                f"config['fallback_chain'] names {quoted(name)}{hint}, which is not a configured "
                f"backend; configured: {names}"
            )
    values.update(
        on_budget_exceeded=action,
        ledger=None if ledger is None else str(ledger),
        fallback_chain=tuple(chain),
    )
    return values


def _default_executor() -> dict[str, Any]:
    address = os.environ.get(DASK_ADDRESS_ENV)
    return {"kind": "dask", "address": address} if address else {"kind": "serial"}


def _parse_executor(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping) or value.get("kind") not in _EXECUTOR_KINDS:
        raise ConfigError(
            f"config['executor'] = {quoted(value)}; use {{'kind': k}} with k in {_EXECUTOR_KINDS}"
        )
    options = _EXECUTOR_OPTIONS[value["kind"]]
    _reject_unknown(value, ("kind", *options), "config['executor']")
    for key, (valid, expected) in options.items():
        if key in value and not valid(value[key]):
            raise ConfigError(f"config['executor'][{key!r}] = {quoted(value[key])}; use {expected}")
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
            hint = did_you_mean(key, allowed, " (did you mean {!r}?)")
            raise ConfigError(
                f"unknown key {quoted(key)} in {where}{hint}; valid keys: {', '.join(allowed)}"
            )
