"""A model file must not spend money: a `.keras` file edited to name an IonQ device
loads onto a local simulator (or the device the caller passes), never onto IonQ."""

import json
import zipfile

import keras
import numpy as np
import pennylane as qml
import pytest
from ionq_support import emulator_server

from qstore_pl.keras import LOAD_DEVICE, KerasLayer, UnsafeDeviceWarning, load_model

N = 2
emulator = pytest.fixture(emulator_server, name="emulator")


@keras.saving.register_keras_serializable(package="qstore_load_tests")
def angle_circuit(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N))
    qml.BasicEntanglerLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(w)) for w in range(N)]


def saved_model(path):
    qnode = qml.QNode(angle_circuit, qml.device("default.qubit", wires=N))
    model = keras.Sequential([keras.Input((N,)), KerasLayer(qnode, {"weights": (1, N)})])
    model.save(path)
    return model


def edit_device(path, name, shots=None):
    """Rewrite the saved layer's device (and shots), as anyone with the file can."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    [layer] = [layer for layer in config["config"]["layers"] if "qnode" in layer["config"]]
    layer["config"]["qnode"]["device"]["name"] = name
    layer["config"]["qnode"]["shots"] = shots
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)


def layer_device(model):
    [layer] = [layer for layer in model.layers if isinstance(layer, KerasLayer)]
    return layer.qnode.device


X = np.array([[0.1, 0.7], [1.2, -0.4]], dtype="float32")


@pytest.mark.parametrize("name, shots", [("ionq.qpu", None), ("qstore.ionq", 100)])
def test_an_edited_model_file_loads_onto_a_local_simulator(emulator, tmp_path, name, shots):
    path = tmp_path / "m.keras"
    original = saved_model(path)
    edit_device(path, name, shots)
    with pytest.warns(UnsafeDeviceWarning, match=f"names the device '{name}'.*default.qubit"):
        loaded = keras.models.load_model(path)  # Keras's default: safe_mode=True
    assert layer_device(loaded).name == "default.qubit"
    out = np.asarray(loaded(X))
    if shots is None:
        np.testing.assert_allclose(out, np.asarray(original(X)), atol=1e-5)
    else:
        np.testing.assert_allclose(out, np.asarray(original(X)), atol=0.35)  # 100 shots
    assert not emulator.jobs  # nothing reached IonQ


def test_the_device_passed_at_load_time_is_used(emulator, tmp_path):
    path = tmp_path / "m.keras"
    original = saved_model(path)
    edit_device(path, "qstore.ionq", 100)
    router = qml.device("qstore.router", wires=N)
    loaded = load_model(path, device=router)
    assert layer_device(loaded) is router
    via_keras = keras.models.load_model(path, custom_objects={LOAD_DEVICE: "lightning.qubit"})
    assert layer_device(via_keras).name == "lightning.qubit"
    np.testing.assert_allclose(
        np.asarray(via_keras(X)), np.asarray(original(X)), atol=0.35
    )  # 100 shots, as saved
    assert not emulator.jobs


def test_a_priced_device_cannot_be_passed_at_load_time(emulator, tmp_path):
    path = tmp_path / "m.keras"
    saved_model(path)
    with pytest.raises(ValueError, match=r"through a qstore\.router with a ledger"):
        load_model(path, device=qml.device("qstore.ionq", wires=N))
    assert not emulator.jobs


def test_a_local_saved_device_comes_back_as_it_was(tmp_path):
    path = tmp_path / "m.keras"
    saved_model(path)
    edit_device(path, "lightning.qubit")
    loaded = keras.models.load_model(path)
    assert layer_device(loaded).name == "lightning.qubit"
