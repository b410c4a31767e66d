"""Executor configuration, the work shipped to workers, and the progress counter
(no cluster needed)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pennylane as qml
import pytest

import qstore_pl
from qstore_pl.router.config import load_config
from qstore_pl.router.execution.dask import DaskExecutor
from qstore_pl.router.execution.executors import BackendPool, GroupWork, SerialExecutor, run_work
from qstore_pl.router.execution.packing import PackedTapes, pack, unpack
from qstore_pl.router.execution.task import Task
from qstore_pl.support.progress import CircuitProgress

ADDRESS = "tcp://10.0.0.5:8786"


def test_dask_address_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("QSTORE_DASK_ADDRESS", raising=False)
    assert load_config({}).executor == {"kind": "serial"}
    given = load_config({"executor": {"kind": "dask", "address": ADDRESS}}).executor
    assert given == {"kind": "dask", "address": ADDRESS}

    monkeypatch.setenv("QSTORE_DASK_ADDRESS", ADDRESS)
    assert load_config({}).executor == {"kind": "dask", "address": ADDRESS}
    assert load_config({"executor": "dask"}).executor == {"kind": "dask", "address": ADDRESS}
    # an explicit choice wins over the environment
    assert load_config({"executor": "serial"}).executor == {"kind": "serial"}
    local = load_config({"executor": {"kind": "dask", "n_workers": 2}}).executor
    assert local == {"kind": "dask", "n_workers": 2}


def test_router_builds_the_configured_executor_without_connecting():
    dev = qml.device(
        "qstore.router", wires=2, router_config={"executor": {"kind": "dask", "address": ADDRESS}}
    )
    assert isinstance(dev.executor, DaskExecutor)
    assert dev.executor.address == ADDRESS and dev.executor._client is None
    assert isinstance(qml.device("qstore.router", wires=2).executor, SerialExecutor)


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ({"kind": "dask", "adress": ADDRESS}, "did you mean 'address'"),
        ({"kind": "dask", "address": "10.0.0.5"}, "tcp://host:port"),
        ({"kind": "dask", "retries": -1}, "non-negative"),
        ({"kind": "dask", "chunks_per_worker": 0}, "positive integer"),
        ({"kind": "dask", "progress": "yes"}, "true or false"),
        ({"kind": "dask", "address": ADDRESS, "n_workers": 2}, "both 'address' and 'n_workers'"),
        ({"kind": "serial", "address": ADDRESS}, "unknown key 'address'"),
    ],
)
def test_bad_executor_options_are_named(executor, message):
    with pytest.raises(qstore_pl.ConfigError, match=message):
        load_config({"executor": executor})


def _tapes(count):
    return [
        qml.tape.QuantumScript(
            [qml.RX(0.1 * k, 0), qml.CNOT([0, 1]), qml.RY(0.2, 1)], [qml.expval(qml.Z(1))]
        )
        for k in range(count)
    ]


def test_work_is_plain_data_and_cheap_to_ship():
    dev = qml.device("qstore.router", wires=2, router_config={"backends": ["lightning.qubit"]})
    tapes = _tapes(10)
    work = GroupWork("owner", dev.backends[0], 2, None, Task.EXECUTE, tapes)
    shipped = pickle.dumps(work)
    # a template tape, a table of parameters and the backend's description: smaller
    # than the tapes themselves, and no device or router
    assert len(shipped) < len(pickle.dumps(tapes))
    pool = BackendPool()
    got = run_work(pickle.loads(shipped), pool)
    want = [qml.device("default.qubit").execute(t) for t in tapes]
    np.testing.assert_allclose(got, want, atol=1e-12)
    run_work(pickle.loads(shipped), pool)
    assert len(pool) == 1  # the device was built once


def test_work_splits_into_ordered_pieces_with_their_cotangents():
    dev = qml.device("qstore.router", wires=2, router_config={"backends": ["lightning.qubit"]})
    tapes = _tapes(7)
    spec = dev.backends[0]
    work = GroupWork(
        "o", spec, 2, None, Task.VJP, tapes, cotangents=list(range(7)), method="adjoint"
    )
    pieces = work.split(3)
    assert [len(p.tapes) for p in pieces] == [2, 3, 2]
    assert [t for p in pieces for t in p.tapes] == tapes
    assert [c for p in pieces for c in p.cotangents] == list(range(7))
    assert len(work.split(50)) == 7


def test_progress_counts_circuits_and_shows_them():
    out = io.StringIO()
    with CircuitProgress(file=out) as progress:
        progress.expect(6)
        progress.advance(2)
        progress.expect(4)
        progress.advance(8)
        assert (progress.done, progress.total) == (10, 10)
    assert "10/10" in out.getvalue()


def test_packed_tapes_rebuild_exactly():
    rng = np.random.default_rng(0)
    tapes = []
    for _ in range(5):
        a, b = rng.uniform(0, np.pi, 2)
        tape = qml.tape.QuantumScript(
            [qml.RX(a, 0), qml.CRY(b, [0, 1]), qml.Rot(a, b, 0.3, 1)],
            [qml.expval(qml.Z(0) @ qml.X(1)), qml.probs(wires=[1])],
        )
        tape.trainable_params = [0, 2]
        tapes.append(tape)
    packed = pack(tapes)
    assert isinstance(packed, PackedTapes) and packed.parameters.shape == (5, 5)
    back = unpack(pickle.loads(pickle.dumps(packed)))
    for got, want in zip(back, tapes):
        qml.assert_equal(got, want)
        assert got.trainable_params == [0, 2]


def test_tapes_that_do_not_share_a_structure_travel_as_they_are():
    one = qml.tape.QuantumScript([qml.RX(0.1, 0)], [qml.expval(qml.Z(0))])
    other = qml.tape.QuantumScript([qml.RY(0.1, 0)], [qml.expval(qml.Z(0))])
    assert pack([one, other]) == [one, other]
    single_precision = qml.tape.QuantumScript([qml.RX(np.float32(0.1), 0)], one.measurements)
    packed = pack([single_precision, single_precision])
    assert unpack(packed)[1].operations[0].data[0].dtype == np.float32
