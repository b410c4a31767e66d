"""API keys never appear in error messages, reprs or pickles; a pickled key is a
reference that the receiving process resolves from its own environment."""

import pickle

import pennylane as qml
import pytest
from ionq_support import API_KEY, emulator_server, ionq

from qstore_pl.devices.ionq.connection import api_key
from qstore_pl.exceptions import ConfigError
from qstore_pl.router.config import load_config
from qstore_pl.support import secret as secret_module
from qstore_pl.support.secret import Secret, redacted

CONFIG_KEY = "sk-written-into-the-config-93b1"
emulator = pytest.fixture(emulator_server, name="emulator")


def entry():
    return {
        "name": "hw",
        "type": "ionq",
        "target": "qpu.aria-1",
        "options": {"api_key": CONFIG_KEY},
    }


@pytest.mark.parametrize(
    "backends",
    [
        entry(),  # a mapping where a list belongs
        [[entry()]],  # a list where a mapping belongs
        [{"name": "hw", "type": "ionq", "options": [("api_key", CONFIG_KEY)]}],
    ],
)
def test_config_errors_do_not_show_the_key(backends):
    with pytest.raises(ConfigError) as info:
        load_config({"backends": backends})
    assert CONFIG_KEY not in str(info.value) + repr(info.value)
    assert "backends" in str(info.value)


def test_redacted_hides_nested_secret_values():
    shown = redacted({"a": [{"api_key": "x1"}, {"token": "x2"}], "b": Secret("x3"), "c": 1})
    assert shown == {"a": [{"api_key": "***"}, {"token": "***"}], "b": "***", "c": 1}


def test_config_and_spec_pickles_carry_no_key(emulator, tmp_path):
    cfg = {"backends": [ionq("hw", "qpu.aria-1", options={"api_key": CONFIG_KEY})]}
    cfg["ledger"] = str(tmp_path / "ledger.sqlite")
    dev = qml.device("qstore.router", wires=2, router_config=cfg)
    [spec] = dev.backends
    for obj in (dev.config, spec, dev.config.backends[0]):
        data = pickle.dumps(obj)
        assert CONFIG_KEY.encode() not in data and CONFIG_KEY not in repr(obj)
        # the same process resolves its own reference
        assert pickle.loads(data) == obj
    assert pickle.loads(pickle.dumps(spec)).device_kwargs["api_key"].reveal() == CONFIG_KEY


def test_a_key_from_the_environment_travels_as_the_variables_name(monkeypatch):
    monkeypatch.setenv("IONQ_API_KEY", API_KEY)
    key = api_key(None)
    data = pickle.dumps(key)
    assert API_KEY.encode() not in data and b"IONQ_API_KEY" in data
    monkeypatch.setenv("IONQ_API_KEY", "sk-the-workers-own-key")  # another machine
    assert pickle.loads(data).reveal() == "sk-the-workers-own-key"


def test_a_config_key_cannot_be_read_in_another_process(monkeypatch):
    data = pickle.dumps(Secret(CONFIG_KEY))
    monkeypatch.setattr(secret_module, "_LITERALS", {})  # a process that never read it
    received = pickle.loads(data)
    with pytest.raises(ConfigError, match="environment variable that every worker sets"):
        received.reveal()
    assert CONFIG_KEY not in repr(received)
    # a worker with its own IONQ_API_KEY uses that
    monkeypatch.setenv("IONQ_API_KEY", "sk-the-workers-own-key")
    monkeypatch.delenv("PENNYLANE_IONQ_API_KEY", raising=False)
    assert api_key(received).reveal() == "sk-the-workers-own-key"
