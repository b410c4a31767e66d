"""Router configuration: loading from dicts and files, and clear errors for bad values."""

import pennylane as qml
import pytest

from qstore_pl.exceptions import ConfigError, UnknownBackendError
from qstore_pl.router.config import AUTO, BackendConfig, load_config


def test_defaults_use_every_local_simulator():
    config = load_config(None)
    assert config.backends == (BackendConfig(AUTO, AUTO),)
    assert config.routing_strategy == "performance"
    assert config.precision == "single"
    assert config.fallback is True


def test_dict_with_names_and_entries():
    config = load_config(
        {
            "backends": ["default.qubit", {"name": "fast", "type": "lightning.qubit"}],
            "precision": "double",
        }
    )
    assert [b.name for b in config.backends] == ["default.qubit", "fast"]
    assert [b.type for b in config.backends] == ["default.qubit", "lightning.qubit"]
    assert config.precision == "double"


def test_overrides_replace_file_values(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text("backends: [default.qubit]\nprecision: double\n")
    config = load_config(path, precision="single")
    assert config.precision == "single"
    assert config.backends[0].type == "default.qubit"


def test_yaml_and_toml_files_give_the_same_config(tmp_path):
    yaml_path = tmp_path / "r.yml"
    yaml_path.write_text(
        "backends:\n  - name: ds\n    type: default.qubit\nrouting_strategy: performance\n"
    )
    toml_path = tmp_path / "r.toml"
    toml_path.write_text(
        'routing_strategy = "performance"\n[[backends]]\nname = "ds"\ntype = "default.qubit"\n'
    )
    assert load_config(yaml_path) == load_config(str(toml_path))


def test_router_reads_a_config_file_through_qml_device(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text('backends = ["default.qubit"]\nprecision = "double"\n')
    dev = qml.device("qstore.router", wires=2, router_config=str(path))
    assert [s.name for s in dev.backends] == ["default.qubit"]
    assert dev.config.precision == "double"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"bakends": ["default.qubit"]}, "did you mean 'backends'"),
        ({"precision": "quad"}, "precision"),
        ({"backends": []}, "non-empty list"),
        ({"backends": "lightning.qubit"}, "non-empty list"),
        ({"backends": [3]}, "must be a name or a dict"),
        ({"backends": [{"type": "default.qubit", "optins": {}}]}, "did you mean 'options'"),
        ({"backends": [{"name": "a", "type": "default.qubit", "options": 5}]}, "options"),
        ({"backends": ["default.qubit", "default.qubit"]}, "unique"),
        ({"fallback": "yes"}, "true or false"),
        ({"executor": {"kind": "spark"}}, "executor"),
        ({"routing_strategy": "cheapest"}, "routing_strategy"),
        ([1, 2], "must be a dict"),
    ],
)
def test_invalid_values_name_the_key_and_the_fix(config, message):
    with pytest.raises(ConfigError, match=message):
        qml.device("qstore.router", wires=2, router_config=config)


def test_unknown_backend_suggests_the_closest_name():
    with pytest.raises(UnknownBackendError, match=r"Did you mean 'lightning\.qubit'"):
        qml.device("qstore.router", wires=2, router_config={"backends": ["lightning.quibit"]})


def test_backend_options_the_device_rejects_are_a_config_error():
    with pytest.raises(ConfigError, match="cannot be built with options"):
        qml.device(
            "qstore.router",
            wires=2,
            router_config={
                "backends": [{"name": "l", "type": "lightning.qubit", "options": {"x": 1}}]
            },
        )


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("r.json", "{}", "must end in"),
        ("r.yaml", "backends: [unclosed", "not valid yaml"),
        ("r.toml", "backends = [", "not valid toml"),
    ],
)
def test_bad_config_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("/nonexistent/router.yaml")
