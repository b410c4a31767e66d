"""ResultCache: exact-match hits, money saved, paid results cached by default."""

import numpy as np
import pennylane as qml
import pytest
from pennylane.tape import QuantumScript

from qstore_pl.callbacks import ExecutionRecord
from qstore_pl.db import ResultCache, open_store


def test_a_hit_replays_the_stored_samples_instead_of_running(tmp_path):
    cache = ResultCache(open_store(path=None), simulators=True)
    dev = qml.device("qstore.router", wires=2, callbacks=[cache], seed=3)

    @qml.set_shots(50)
    @qml.qnode(dev)
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        return qml.sample(wires=[0, 1])

    first, second, other = circuit(1.2), circuit(1.2), circuit(1.3)
    np.testing.assert_array_equal(first, second)  # fresh sampling would differ
    assert not np.array_equal(first, other)
    savings = cache.savings()
    assert (savings.hits, savings.misses, savings.saved_usd) == (1, 2, 0.0)


def paid_record(x, backend="ionq_qpu", cost=0.75):
    tape = QuantumScript([qml.RY(x, 0)], [qml.expval(qml.Z(0))], shots=100)
    return ExecutionRecord(tape, np.float64(np.cos(x)), "execute", backend, 100, 2.0, cost=cost)


def test_paid_results_are_cached_by_default_and_count_as_money_saved(tmp_path):
    with open_store(path=tmp_path / "db") as store:
        cache = ResultCache(store)
        cache.on_execution(paid_record(0.4))
        cache.on_execution(paid_record(0.5, cost=0.0))  # free: not cached by default
    with open_store(path=tmp_path / "db") as store:  # survives a restart
        cache = ResultCache(store)
        tape = paid_record(0.4).tape
        assert cache.lookup(tape, "ionq_qpu") == pytest.approx(np.cos(0.4), abs=0)
        assert cache.lookup(tape, "ionq_simulator") is None  # other backend
        assert cache.lookup(paid_record(0.4 + 1e-12).tape, "ionq_qpu") is None  # other value
        assert cache.lookup(paid_record(0.5).tape, "ionq_qpu") is None
        savings = cache.savings()
    assert (savings.hits, savings.misses) == (1, 3)
    assert cache.saved_usd == pytest.approx(0.75)
    assert savings.by_backend == {"ionq_qpu": pytest.approx(0.75)}
    assert "1 hits" in str(savings) and "$0.75 saved" in str(savings)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (qml.X(0) @ qml.Y(1), qml.Y(0) @ qml.X(1)),
        (
            qml.Hamiltonian([0.5, -1.5], [qml.Z(1), qml.X(1)]),
            qml.Hamiltonian([0.5, -1.5], [qml.Y(1), qml.X(1)]),
        ),
    ],
)
def test_composite_observables_of_the_same_kind_are_different_entries(first, second):
    """A product or Hamiltonian is told apart by its factors, not only its kind: the
    router on a cache must return each observable's own value."""
    cache = ResultCache(open_store(path=None), simulators=True)
    dev = qml.device("qstore.router", wires=2, callbacks=[cache])
    reference = qml.device("default.qubit", wires=2)

    def circuit(obs):
        qml.RX(0.4, 0)
        qml.RY(1.1, 1)
        qml.CNOT([0, 1])
        return qml.expval(obs)

    for obs in (first, second):
        got = qml.QNode(circuit, dev)(obs)
        assert got == pytest.approx(qml.QNode(circuit, reference)(obs), abs=1e-12)
    assert cache.savings().hits == 0
