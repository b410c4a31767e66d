"""The execution config the three qstore devices resolve the same way (lightning's rules)."""

from __future__ import annotations

import pennylane as qml
import pytest
from pennylane.devices import ExecutionConfig, MCMConfig
from pennylane.exceptions import DeviceError

from qstore_pl.devices.batched import BatchedDevice
from qstore_pl.devices.qsim import QsimDevice
from qstore_pl.router.device import RouterDevice

DEVICES = {
    "qstore.router": lambda: RouterDevice(wires=2, config={"backends": ["default.qubit"]}),
    "qstore.batched": lambda: BatchedDevice(wires=2),
    "qstore.qsim": lambda: QsimDevice(wires=2),
}


@pytest.mark.parametrize("name", DEVICES)
def test_an_unknown_device_option_is_named(name):
    config = ExecutionConfig(device_options={"max_bond_dim": 4})
    with pytest.raises(DeviceError, match=f"device option 'max_bond_dim' is not known to {name}"):
        DEVICES[name]().setup_execution_config(config)


@pytest.mark.parametrize("name", ["qstore.batched", "qstore.qsim"])
def test_only_deferred_mid_circuit_measurements(name):
    device = DEVICES[name]()
    assert device.setup_execution_config().mcm_config.mcm_method == "deferred"
    config = ExecutionConfig(mcm_config=MCMConfig(mcm_method="one-shot"))
    with pytest.raises(DeviceError, match=f"not supported on {name}, which cannot branch"):
        device.setup_execution_config(config)


@pytest.mark.parametrize("name", ["qstore.router", "qstore.batched"])
@pytest.mark.parametrize("interface", ["autograd", "torch", "tf"])
def test_adjoint_with_vjps_except_for_tensorflow(name, interface):
    tape = qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.expval(qml.Z(0)), qml.expval(qml.Z(1))])
    config = ExecutionConfig(gradient_method="best", interface=interface)
    resolved = DEVICES[name]().setup_execution_config(config, tape)
    assert resolved.gradient_method == "adjoint" and resolved.use_device_gradient
    assert resolved.use_device_jacobian_product == (interface != "tf")
    assert resolved.grad_on_execution == (name == "qstore.router" and interface == "tf")
    asked = ExecutionConfig(
        gradient_method="adjoint", interface="tf", use_device_jacobian_product=True
    )
    assert DEVICES[name]().setup_execution_config(asked, tape).use_device_jacobian_product
