"""The compiled circuit-input path (PQC / ControlledPQC without a tape per sample).

Values and vector-Jacobian products must equal today's tape path on the same router
and default.qubit's, for batches that mix data-circuit structures, with several
observables; the router still routes and logs, and falls back to tapes (saying why,
once) where the compiled program cannot run.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pennylane as qml
import pytest
from callback_support import Collector
from engine_failures import engine_without_memory
from pennylane.tape import QuantumScript

from qstore_pl.circuits import ParametrizedCircuit, encode_circuits
from qstore_pl.db import ResultCache, StateRecorder, open_store
from qstore_pl.layers.circuit_batch import CircuitBatch
from qstore_pl.layers.compiled import CompiledPathWarning
from qstore_pl.router.execution.compiled import IN_THIS_PROCESS
from qstore_pl.templates import QCNN

WIRES = 4
OBSERVABLES = [qml.Z(3), qml.X(0) @ qml.Y(2), qml.Hamiltonian([0.5, -1.5], [qml.Z(1), qml.X(1)])]


def model(w, v):
    qml.RY(w[0], 0)
    qml.CNOT([0, 1])
    qml.Rot(w[1], 0.3, -w[0], wires=2)  # decomposes: constants and a negated symbol
    qml.IsingXX(2 * v, wires=[1, 2])
    qml.IsingYY(w[1], wires=[2, 3])
    qml.CRX(w[0], wires=[3, 0])  # not portable: decomposed, angle halves


MODEL = ParametrizedCircuit.from_function(model, w=2, v=())
QCNN_MODEL = ParametrizedCircuit.from_function(lambda w: QCNN(w, range(WIRES)), w=QCNN.shape(WIRES))


def data_tensor(n: int, seed: int = 0) -> np.ndarray:
    """Circuits of four structures (one with no parameter, one three-parameter gate)."""
    rng = np.random.default_rng(seed)
    makers = [
        lambda a: [qml.RX(a, 0)],
        lambda a: [qml.Hadamard(2), qml.RY(a, 1), qml.CNOT([1, 3])],
        lambda a: [qml.U3(a, -a, 0.5 * a, wires=3), qml.CZ([3, 0])],
        lambda a: [qml.PauliX(1)],
    ]
    circuits = [
        qml.tape.QuantumScript(makers[i % 4](a)) for i, a in enumerate(rng.uniform(0, 3, n))
    ]
    return encode_circuits(circuits, max_ops=4)


C64 = {"name": "qstore.batched.c64", "type": "qstore.batched", "options": {"c_dtype": "complex64"}}


def router(backends=("qstore.batched",), **kwargs):
    return qml.device(
        "qstore.router", wires=WIRES, router_config={"backends": list(backends)}, **kwargs
    )


def tape_path(batch: CircuitBatch, *args):
    """Today's path on the same device: one tape per sample."""
    batch.compiled = None
    return batch.host_function().forward_and_vjp(*args)


def check_against_references(
    model, args, per_sample=False, backends=("qstore.batched",), atol=1e-10, against_tapes=True
):
    compiled = CircuitBatch(model, OBSERVABLES, router(backends), per_sample_symbols=per_sample)
    value, vjp = compiled.host_function().forward_and_vjp(*args)
    assert compiled.path == "compiled"
    cotangent = np.random.default_rng(7).normal(size=value.shape)
    grads = vjp(cotangent)
    assert not np.any(grads[0])  # data circuits get no gradient, as in TFQ

    reference = CircuitBatch(
        model, OBSERVABLES, qml.device("default.qubit", wires=WIRES), per_sample_symbols=per_sample
    )
    ref_value, ref_vjp = reference.host_function().forward_and_vjp(*args)
    ref_grads = ref_vjp(cotangent)
    np.testing.assert_allclose(value, ref_value, atol=atol)
    for got, want in zip(grads[1:], ref_grads[1:], strict=True):
        np.testing.assert_allclose(got, want, atol=atol * 10)
    assert np.abs(ref_grads[1]).max() > 0.1  # the gradients compared are not all zero
    if not against_tapes:
        return compiled
    tapes = CircuitBatch(model, OBSERVABLES, router(backends), per_sample_symbols=per_sample)
    tape_value, tape_vjp = tape_path(tapes, *args)
    np.testing.assert_allclose(value, tape_value, atol=atol)
    for got, want in zip(grads[1:], tape_vjp(cotangent)[1:], strict=True):
        np.testing.assert_allclose(got, want, atol=atol * 10)
    return compiled


def test_pqc_values_and_vjp_equal_tape_path_and_default_qubit_on_mixed_structures():
    rng = np.random.default_rng(1)
    batch = check_against_references(MODEL, (data_tensor(9), rng.uniform(0, 3, 2), np.array(0.7)))
    report = batch.device.routing_report()
    assert report.totals["qstore.batched"].circuits == 18  # forward and VJP of 9 samples
    assert "circuit-input program, no tapes" in str(report)


def test_controlled_pqc_per_sample_values_and_vjp_equal_references():
    values = np.random.default_rng(2).uniform(0, 3, (7, 3))
    check_against_references(MODEL, (data_tensor(7, seed=3), values), per_sample=True)


def test_qcnn_template_in_single_precision_backend():
    weights = np.random.default_rng(4).uniform(0, 2 * np.pi, QCNN.shape(WIRES))
    check_against_references(
        QCNN_MODEL,
        (data_tensor(6, seed=5), weights),
        backends=[C64],
        atol=2e-6,
        against_tapes=False,  # slow on a complex64-only router; the tests above compare it
    )


def test_inference_call_gives_the_same_values_without_a_vjp():
    batch = CircuitBatch(MODEL, OBSERVABLES, router())
    args = (data_tensor(5), np.array([0.1, 0.2]), np.array(0.3))
    host = batch.host_function()
    np.testing.assert_allclose(host.forward(*args), host.forward_and_vjp(*args)[0], atol=1e-12)
    assert batch.path == "compiled"
    assert batch.device.routing_report().totals["qstore.batched"].derivative_groups == 0


def test_another_backend_falls_back_to_tapes_and_says_so_once(caplog):
    batch = CircuitBatch(MODEL, OBSERVABLES, router(["default.qubit"]))
    args = (data_tensor(5), np.array([0.1, 0.2]), np.array(0.3))
    reference = CircuitBatch(MODEL, OBSERVABLES, qml.device("default.qubit", wires=WIRES))
    with caplog.at_level(logging.WARNING, logger="qstore_pl.layers.circuit_program"):
        for _ in range(2):
            value = batch.host_function().forward(*args)
    np.testing.assert_allclose(value, reference.host_function().forward(*args), atol=1e-12)
    assert batch.path == "tapes: the router chose 'default.qubit', which runs tapes only"
    assert [r.getMessage() for r in caplog.records] == [
        f"circuit-input layer: running tapes through the router: {batch.path[7:]}"
    ]


class SquaredRX(qml.operation.Operation):
    """RX of the squared parameter: its decomposition is not affine in it."""

    num_wires = 1
    num_params = 1

    @staticmethod
    def compute_decomposition(x, wires):
        return [qml.RX(x**2, wires=wires)]


def test_model_whose_angles_are_not_affine_runs_tapes():
    nonlinear = ParametrizedCircuit.from_function(
        lambda x: [SquaredRX(x, wires=0), qml.CNOT([0, 3])], x=()
    )
    batch = CircuitBatch(nonlinear, OBSERVABLES, router())
    reference = CircuitBatch(nonlinear, OBSERVABLES, qml.device("default.qubit", wires=WIRES))
    args = (data_tensor(3), np.array(0.8))
    np.testing.assert_allclose(
        batch.host_function().forward(*args), reference.host_function().forward(*args), atol=1e-12
    )
    assert batch.path == (
        "tapes: the model circuit cannot be compiled: the gate angles are not an affine "
        "function of the symbols"
    )


def reference_state(tape):
    return qml.execute([QuantumScript(tape.operations, [qml.state()])], REFERENCE)[0]


REFERENCE = qml.device("default.qubit", wires=WIRES)


@pytest.mark.parametrize("per_sample", [False, True], ids=["PQC", "ControlledPQC"])
def test_callbacks_and_the_recorder_see_each_samples_circuit_result_and_state(tmp_path, per_sample):
    """The compiled path stays on with callbacks: each sample's circuit, result and
    final state reach them, as on the tape path, and the recorder stores
    default.qubit's states."""
    rng = np.random.default_rng(5)
    batch = 5
    args = (data_tensor(batch, seed=6), rng.uniform(0, 3, (batch, 3)))
    if not per_sample:
        args = (args[0], rng.uniform(0, 3, 2), np.array(0.4))
    collector = Collector()
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", delivery="thread")
    layer = CircuitBatch(
        MODEL, OBSERVABLES, router(callbacks=[collector, recorder]), per_sample_symbols=per_sample
    )
    value, vjp = layer.host_function().forward_and_vjp(*args)
    vjp(np.ones_like(value))
    assert layer.path == "compiled"
    assert [r.task for r in collector.records] == ["execute"] * batch + ["vjp"] * batch

    on_tapes = Collector()
    tapes = CircuitBatch(
        MODEL, OBSERVABLES, router(callbacks=[on_tapes]), per_sample_symbols=per_sample
    )
    tape_path(tapes, *args)

    def in_order(records):  # the tape path reports per structure group, not per sample
        return sorted(tuple(np.round(r.result, 8)) for r in records if r.task == "execute")

    assert in_order(collector.records) == in_order(on_tapes.records)
    for i, record in enumerate(collector.records[:batch]):
        want = qml.execute([record.tape], REFERENCE)[0]
        np.testing.assert_allclose(record.result, want, atol=1e-10)
        np.testing.assert_allclose(record.result, value[i] if len(value[i]) > 1 else value[i][0])
        state = reference_state(record.tape)
        assert record.states.shape == (1, 2**WIRES)
        assert abs(np.vdot(record.states[0], state)) == pytest.approx(1.0, abs=1e-10)
    recorder.flush(timeout=30)
    assert recorder.stats().delivered == batch
    for record in collector.records[:batch]:
        hit = store.query_similar(reference_state(record.tape), top_k=1)[0]
        assert hit.fidelity == pytest.approx(1.0, abs=1e-6)
    recorder.close()


def test_a_result_cache_answers_repeated_inference_and_training_still_runs(tmp_path):
    """With a cache that keeps free results, an inference call runs only the samples
    it has not seen; a training call runs (its VJP needs the states) and fills it."""
    with open_store(path=tmp_path / "db") as store:
        cache = ResultCache(store, simulators=True)
        dev = router(callbacks=[cache])
        layer = CircuitBatch(MODEL, OBSERVABLES, dev).host_function()
        reference = CircuitBatch(MODEL, OBSERVABLES, REFERENCE).host_function()
        weights = (np.array([0.1, 0.2]), np.array(0.3))
        seen, fresh = data_tensor(4, seed=1), data_tensor(4, seed=2)
        first = layer.forward(seen, *weights)
        assert cache.savings().hits == 0
        mixed = np.concatenate([fresh[:2], seen[:2]])  # two new samples, two cached
        got = layer.forward(mixed, *weights)
        np.testing.assert_allclose(got, reference.forward(mixed, *weights), atol=1e-10)
        np.testing.assert_allclose(got[2:], first[:2], atol=0)
        assert cache.savings().hits == 2
        report = dev.routing_report()
        assert report.totals["qstore.batched"].cached == 2
        value, vjp = layer.forward_and_vjp(seen, *weights)  # training: runs, no lookup
        want_value, want_vjp = reference.forward_and_vjp(seen, *weights)
        np.testing.assert_allclose(value, want_value, atol=1e-10)
        for got_grad, want_grad in zip(
            vjp(np.ones_like(value))[1:], want_vjp(np.ones_like(value))[1:]
        ):
            np.testing.assert_allclose(got_grad, want_grad, atol=1e-9)
        assert cache.savings().hits == 2


def test_a_cache_of_paid_results_only_never_answers_free_runs(tmp_path):
    cache = ResultCache(open_store(path=None))  # simulators=False: free results not kept
    layer = CircuitBatch(MODEL, OBSERVABLES, router(callbacks=[cache])).host_function()
    args = (data_tensor(3), np.array([0.1, 0.2]), np.array(0.3))
    first, second = layer.forward(*args), layer.forward(*args)
    np.testing.assert_array_equal(first, second)
    assert cache.savings().hits == 0


def test_a_router_on_dask_runs_the_compiled_batch_here_and_says_why():
    """The cluster's address is never reachable: the batch must not need it."""
    dev = qml.device(
        "qstore.router",
        wires=WIRES,
        router_config={
            "backends": ["qstore.batched"],
            "executor": {"kind": "dask", "address": "tcp://127.0.0.1:9", "timeout": 1},
        },
    )
    layer = CircuitBatch(MODEL, OBSERVABLES, dev)
    args = (data_tensor(4), np.array([0.1, 0.2]), np.array(0.3))
    value = layer.host_function().forward(*args)
    reference = CircuitBatch(MODEL, OBSERVABLES, REFERENCE).host_function().forward(*args)
    np.testing.assert_allclose(value, reference, atol=1e-10)
    assert layer.path == f"compiled ({IN_THIS_PROCESS})"
    assert IN_THIS_PROCESS in str(dev.routing_report())


def test_tracker_counts_compiled_executions():
    dev = router()
    batch = CircuitBatch(MODEL, OBSERVABLES, dev)
    with qml.Tracker(dev) as tracker:
        batch.host_function().forward(data_tensor(6), np.array([0.1, 0.2]), np.array(0.3))
    assert tracker.totals["executions:qstore.batched"] == 6


@pytest.mark.parametrize("diff_method", ["parameter-shift"])
def test_other_differentiation_methods_keep_the_tape_path(diff_method):
    batch = CircuitBatch(MODEL, OBSERVABLES, router(), diff_method=diff_method)
    batch.host_function().forward(data_tensor(2), np.array([0.1, 0.2]), np.array(0.3))
    assert batch.path.startswith("tapes:")


def test_data_circuit_on_a_wire_the_model_lacks_is_refused_clearly():
    batch = CircuitBatch(MODEL, OBSERVABLES, router())
    tensor = encode_circuits([[qml.RX(0.1, 0)], [qml.RX(0.2, 5)]], max_ops=1)
    with pytest.raises(ValueError, match="acts on wire 5, but the model circuit has 4 wires"):
        batch.host_function().forward(tensor, np.array([0.1, 0.2]), np.array(0.3))


# ------------------------------------------------------- engine failures fall back
@pytest.mark.parametrize("per_sample", [False, True], ids=["PQC", "ControlledPQC"])
@pytest.mark.parametrize("fails_in", ["execute", "vjp"])
def test_an_engine_failure_runs_the_batch_as_tapes_with_the_same_values_and_vjp(
    monkeypatch, per_sample, fails_in
):
    failing = engine_without_memory(monkeypatch, gone=fails_in == "execute")
    rng = np.random.default_rng(8)
    args = (data_tensor(5, seed=9), rng.uniform(0, 3, (5, 3)))
    if not per_sample:
        args = (args[0], rng.uniform(0, 3, 2), np.array(0.4))
    layer = CircuitBatch(
        MODEL,
        OBSERVABLES,
        router(["qstore.batched", "default.qubit"]),
        per_sample_symbols=per_sample,
    )
    reference = CircuitBatch(MODEL, OBSERVABLES, REFERENCE, per_sample_symbols=per_sample)
    host = layer.host_function()
    cotangent = rng.normal(size=(5, len(OBSERVABLES)))
    with pytest.warns(CompiledPathWarning, match=rf"compiled path \({fails_in}: MemoryError"):
        value, vjp = host.forward_and_vjp(*args)
        failing.memory_gone = True  # the VJP fails too, or first
        grads = vjp(cotangent)
    want, want_vjp = reference.host_function().forward_and_vjp(*args)
    np.testing.assert_allclose(value, want, atol=1e-10)
    for got, expected in zip(grads[1:], want_vjp(cotangent)[1:], strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-9)
    assert layer.path.startswith(f"tapes: qstore.batched failed on the compiled path ({fails_in}")
    runs = layer.device.routing_report().recent
    carried = [r for r in runs if any("compiled path" in f for f in r.failed)]
    assert len(carried) == 1 and carried[0].backend == "default.qubit"
    assert "fallback after" in carried[0].reason
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledPathWarning)  # said once per failure
        np.testing.assert_allclose(host.forward(*args), want, atol=1e-10)
