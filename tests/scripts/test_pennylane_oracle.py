"""The PennyLane-oracle script rewrites devices and sorts failures the way its report claims."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pennylane_oracle.py"


@pytest.fixture(scope="module")
def oracle():
    spec = importlib.util.spec_from_file_location("pennylane_oracle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


MODULE = '''"""doc"""
from __future__ import annotations

import pennylane as qp
from pennylane.devices import DefaultQubit

DEVS = [qp.device("default.qubit"), DefaultQubit(wires=2), qp.devices.DefaultQubit()]


class Custom(DefaultQubit):
    name = "custom"


def build(dev_name="default.qubit"):
    if dev_name == 'default.qubit':
        return qp.device(dev_name, wires=1), qp.device("default.qubit.legacy")
'''


def test_rewrite_switches_every_default_qubit_construction(oracle):
    rewritten = oracle.rewrite_to_router(MODULE)
    namespace = {}
    exec(compile(rewritten, "rewritten", "exec"), namespace)
    assert [dev.name for dev in namespace["DEVS"]] == ["qstore.router"] * 3
    assert namespace["DEVS"][1].wires.tolist() == [0, 1]
    assert "class Custom(DefaultQubit)" in rewritten  # subclasses stay default.qubit
    assert 'qp.device("default.qubit.legacy")' in rewritten  # other devices untouched
    assert 'dev_name="qstore.router"' in rewritten and 'dev_name == "qstore.router"' in rewritten
    assert rewritten.index("from __future__") < rewritten.index("def _qstore_router_device")


def test_rewrite_leaves_modules_without_default_qubit_alone(oracle):
    source = 'import pennylane as qp\n\ndev = qp.device("lightning.qubit", wires=2)\n'
    assert oracle.rewrite_to_router(source) == source


@pytest.mark.parametrize(
    "line, kind",
    [
        ("assert np.allclose(res, expected, atol=tol, rtol=0)", "value"),
        ("assert qp.math.allclose(jac, e)", "value"),
        ("assert spy.call_count == 2", "assertion"),
        ("assert res.shape == (2,)", "assertion"),
        ("assert isinstance(res, tuple)", "assertion"),
    ],
)
def test_value_assertions_are_told_from_bookkeeping(oracle, line, kind):
    outcome = oracle.Outcome("failed", "AssertionError", "builtins", "assert False", line)
    assert oracle.classify(outcome) == kind


def test_errors_from_the_router_are_told_from_others(oracle):
    mine = oracle.Outcome("failed", "BackendExecutionError", "qstore_pl.exceptions", "x")
    theirs = oracle.Outcome("failed", "QuantumFunctionError", "pennylane.exceptions", "x")
    assert oracle.classify(mine) == "router-error"
    assert oracle.classify(theirs) == "other-error"


def test_messages_group_without_numbers_addresses_or_wires(oracle):
    first = "Device <RouterDevice wires=None at 0x7f12> does not support backprop [0.1, 2]"
    second = "Device <RouterDevice wires=3 at 0x7e99> does not support backprop [5.0, 1e-3]"
    assert oracle.normalise(first) == oracle.normalise(second)


def test_wt_derivs_targets_are_named(oracle):
    refusal = oracle.Outcome("failed", "QuantumFunctionError", "", "does not support backprop")
    value = oracle.Outcome("failed", "AssertionError", "", "assert False", "np.allclose(a, b)")
    assert oracle.derivs_fix_target("t.py::test_x", refusal, "other-error") == "backprop routing"
    hessian = "tests/gradients/test_parameter_shift_hessian.py::TestHessian::test_two"
    assert oracle.derivs_fix_target(hessian, value, "value").startswith("higher-order")
    assert (
        oracle.derivs_fix_target("tests/gradients/core/test_vjp.py::test_autograd", value, "value")
        == ""
    )
