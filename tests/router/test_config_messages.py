"""Config errors quote user values briefly and never show an API key."""

from __future__ import annotations

import pytest

from qstore_pl.devices.ionq.pricing import default_pricing, parse_pricing
from qstore_pl.exceptions import ConfigError
from qstore_pl.router.config import load_config
from qstore_pl.support.limits import EXCERPT_CHARS

KEY = "sk-config-message-key-0123456789"


@pytest.mark.parametrize(
    "config",
    [
        {"precision": "q" * 100_000},
        {"routing_strategy": list(range(100_000))},
        {"executor": {"kind": "dask", "timeout": "t" * 100_000}},
        {"fallback_chain": ["x" * 100_000]},
        {"x" * 100_000: 1},
    ],
)
def test_a_huge_value_is_quoted_as_a_short_excerpt(config):
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert len(str(info.value)) < 4 * EXCERPT_CHARS + 300


def test_a_key_in_an_invalid_value_is_hidden():
    with pytest.raises(ConfigError, match=r"'executor'.*'\*\*\*'") as info:
        load_config({"executor": {"kind": "spark", "token": KEY}})
    assert KEY not in str(info.value)


def test_a_yaml_syntax_error_names_the_line_not_its_text(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        f"backends:\n  - {{name: hw, type: ionq, options: {{api_key: {KEY}, target: [}}\n"
    )
    with pytest.raises(ConfigError, match=r"not valid yaml(.|\n)*line 2, column") as info:
        load_config(path)
    assert KEY not in str(info.value) and KEY not in str(info.value.__cause__)


def test_pricing_errors_quote_briefly():
    with pytest.raises(ConfigError, match="non-negative") as info:
        parse_pricing({"cost_1q": "c" * 100_000}, default_pricing("qpu.aria-1"), "pricing")
    assert len(str(info.value)) < EXCERPT_CHARS + 200


def test_an_unknown_ionq_target_is_quoted_briefly():
    from qstore_pl.router.registry.ionq import build_ionq

    with pytest.raises(ConfigError, match=r"IonQ target 'qpu\.ariaaaa") as info:
        build_ionq({"api_key": KEY, "target": "qpu.aria" + "a" * 100_000})
    assert len(str(info.value)) < EXCERPT_CHARS + 200 and KEY not in str(info.value)


@pytest.mark.parametrize(
    "backends",
    [
        [[("api_key", KEY)]],  # options written as pairs where an entry belongs
        [{"name": "hw", "type": "ionq", "use_for": ["api_key", KEY]}],
    ],
)
def test_a_key_written_as_a_pair_is_hidden(backends):
    with pytest.raises(ConfigError, match=r"backends.*'api_key', '\*\*\*'") as info:
        load_config({"backends": backends})
    assert KEY not in str(info.value)
