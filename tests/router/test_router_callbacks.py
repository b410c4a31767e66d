"""Attaching callbacks to a router that exists: ``dev.callbacks``, ``dev.add_callback``
and ``dev.remove_callback`` change what a real router calls while it runs real circuits."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.callbacks import DeviceCallback
from qstore_pl.exceptions import ConfigError

LOCAL = {"backends": ["default.qubit"]}


class Recorder(DeviceCallback):
    def __init__(self):
        self.angles: list[float] = []

    def on_execution(self, record):
        self.angles.append(float(record.tape.operations[0].data[0]))


class AnswerEverything(DeviceCallback):
    """A 'cache' that answers every circuit with the same number."""

    def lookup(self, tape, backend):
        return np.float64(0.125)


def cos_circuit(dev):
    @qml.qnode(dev)
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return circuit


def test_added_callbacks_are_called_and_removed_ones_are_not():
    first = Recorder()
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL, callbacks=[first])
    circuit = cos_circuit(dev)
    assert dev.callbacks == (first,)

    assert circuit(0.1) == pytest.approx(np.cos(0.1))
    second = Recorder()
    dev.add_callback(second)
    assert dev.callbacks == (first, second)
    assert circuit(0.2) == pytest.approx(np.cos(0.2))
    dev.remove_callback(first)
    assert dev.callbacks == (second,)
    assert circuit(0.3) == pytest.approx(np.cos(0.3))

    assert first.angles == pytest.approx([0.1, 0.2])
    assert second.angles == pytest.approx([0.2, 0.3])


def test_an_added_lookup_answers_and_removing_it_runs_the_circuit_again():
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    circuit = cos_circuit(dev)
    cache = AnswerEverything()
    dev.add_callback(cache)
    assert circuit(0.4) == 0.125
    dev.remove_callback(cache)
    assert circuit(0.4) == pytest.approx(np.cos(0.4))
    (totals,) = dev.routing_report().totals.values()
    assert (totals.circuits, totals.cached) == (2, 1)


def test_callbacks_cannot_be_changed_through_the_property():
    dev = qml.device("qstore.router", wires=1, router_config=LOCAL)
    assert dev.callbacks == ()
    with pytest.raises(AttributeError):
        dev.callbacks = (Recorder(),)


def test_removing_a_callback_that_is_not_attached_says_so():
    attached, stranger = Recorder(), Recorder()
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL, callbacks=[attached])
    with pytest.raises(ValueError, match=r"is not attached to this device.*\['Recorder'\]"):
        dev.remove_callback(stranger)
    dev.remove_callback(attached)
    with pytest.raises(ValueError, match=r"is not attached to this device.*attached: \[\]"):
        dev.remove_callback(attached)
    assert dev.callbacks == ()


def test_adding_twice_or_adding_a_non_callback_is_refused():
    recorder = Recorder()
    dev = qml.device("qstore.router", wires=2, router_config=LOCAL)
    dev.add_callback(recorder)
    with pytest.raises(ValueError, match="attached to this device already; add it once"):
        dev.add_callback(recorder)
    with pytest.raises(ConfigError, match=r"no on_execution\(record\) method"):
        dev.add_callback(object())
    assert dev.callbacks == (recorder,)
    cos_circuit(dev)(0.5)
    assert recorder.angles == pytest.approx([0.5])  # called once, not twice
