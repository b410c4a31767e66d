"""The compiled path of torch layers on qstore.router (qstore_pl.layers.compiled).

Values and gradients must be the QNode path's and default.qubit's; circuits the
recording cannot express must run through the QNode, correctly, with one warning;
the router's log, tracker, callbacks and explain must see the compiled runs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pennylane as qml
import pytest
import torch
from callback_support import Collector
from engine_failures import engine_without_memory

from qstore_pl.db import ResultCache, StateRecorder, open_store
from qstore_pl.exceptions import InvalidParameterError
from qstore_pl.layers.compiled import CompiledPathWarning
from qstore_pl.router.execution.compiled import IN_THIS_PROCESS
from qstore_pl.torch import QuantumLayer, TorchLayer

N = 3
SHAPES = {"weights": (2, N, 3)}


def several_measurements(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N), rotation="Y")
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    qml.RX(0.5 * inputs[..., 1], wires=2)  # a scaled input feeds a second gate
    return [
        qml.expval(qml.Z(0)),
        qml.expval(qml.X(1) @ qml.Y(2)),
        qml.expval(qml.Hermitian(np.diag([1.0, -2.0]), wires=1)),
        qml.probs(wires=[0, 2]),
    ]


def single_expval(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N))
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return qml.expval(qml.Z(1))


def pair(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N))
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return qml.expval(qml.Z(0)), qml.expval(qml.Y(2))


def reupload(inputs, weights):
    """Data re-uploading: angles ``w * x + b``, products of two inputs and of two
    weights, an offset."""
    for layer in range(2):
        for i in range(N):
            qml.RY(weights[layer, i, 0] * inputs[..., i] + weights[layer, i, 1], wires=i)
        qml.RX(inputs[..., 0] * inputs[..., 1] - 0.5 * weights[layer, 0, 2], wires=0)
        qml.IsingXX(0.3 + inputs[..., 2], wires=[1, 2])  # decomposes: the sum passes through
        qml.CNOT([0, 1])
        qml.RZ(weights[layer, 2, 2] * weights[layer, 1, 2] / 2, wires=2)  # two weights
    return [qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Z(2)), qml.probs(wires=[0, 2])]


def router(**kwargs):
    return qml.device("qstore.router", wires=N, precision="double", **kwargs)


def layer(fn, device, compiled=True, seed=0, **qnode_kwargs):
    torch.manual_seed(seed)
    qnode = qml.QNode(fn, device, interface="torch", **qnode_kwargs)
    return TorchLayer(qnode, SHAPES, compiled=compiled)


def value_and_grads(model, x, cotangent_seed=1):
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad()
    y = model(x)
    cot = torch.tensor(np.random.default_rng(cotangent_seed).normal(size=y.shape), dtype=y.dtype)
    (y * cot).sum().backward()
    return y.detach(), x.grad, model.qnode_weights["weights"].grad


@pytest.mark.parametrize("fn", [several_measurements, single_expval, pair, reupload])
def test_compiled_values_and_gradients_equal_the_qnode_path_and_default_qubit(fn):
    x = torch.tensor(np.random.default_rng(0).uniform(0, np.pi, (2, 4, N)))  # two batch axes
    compiled = layer(fn, router())
    results = [
        value_and_grads(compiled, x),
        value_and_grads(layer(fn, router(), compiled=False), x),
        value_and_grads(layer(fn, qml.device("default.qubit", wires=N)), x),
    ]
    assert compiled._compiled_host.last_path == "compiled"
    for other in results[1:]:
        for got, want in zip(results[0], other):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_float32_batches_keep_their_dtype_and_match_within_single_precision():
    x = torch.rand(8, N)
    got = value_and_grads(layer(several_measurements, router()), x)
    want = value_and_grads(layer(several_measurements, qml.device("default.qubit", wires=N)), x)
    for a, b in zip(got, want):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=2e-6, rtol=0)


def test_quantum_layer_trains_on_the_compiled_path_as_on_the_qnode_path():
    losses = []
    for compiled in (True, False):
        torch.manual_seed(3)
        q = QuantumLayer(n_qubits=N, depth=2, measurement="probs", compiled=compiled)
        model = torch.nn.Sequential(q, torch.nn.Linear(q.output_dim, 2))
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.rand(6, N, generator=torch.Generator().manual_seed(1))
        y = torch.tensor([0, 1] * 3)
        run = []
        for _ in range(3):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimiser.step()
            run.append(loss.item())
        losses.append(run)
        assert q.compiled is compiled
    np.testing.assert_allclose(losses[0], losses[1], atol=1e-5)


def branch_on_weight(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N))
    if weights[0, 0, 0] > 0.5:  # Python control flow on a value
        qml.CNOT([0, 1])
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(i)) for i in range(N)]


def wire_from_weight(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N))
    qml.RY(0.3, wires=int(weights[0, 0, 0] > 3.0))  # an input-dependent wire
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(i)) for i in range(N)]


def squared_input(inputs, weights):
    qml.RX(inputs[..., 0] ** 2, wires=0)  # arithmetic a symbol cannot express
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(i)) for i in range(N)]


def triple_product(inputs, weights):
    qml.RX(weights[0, 0, 0] * inputs[..., 0] * inputs[..., 1], wires=0)  # degree three
    qml.StronglyEntanglingLayers(weights, wires=range(N))
    return [qml.expval(qml.Z(i)) for i in range(N)]


@pytest.mark.parametrize(
    ("fn", "reason"),
    [
        (branch_on_weight, "uses the value of"),
        (wire_from_weight, "uses the value of"),
        (squared_input, "uses the value of"),
        (triple_product, "uses the value of"),
    ],
)
def test_value_dependent_circuits_fall_back_to_the_qnode_path_correctly_and_say_so_once(fn, reason):
    x = torch.tensor(np.random.default_rng(0).uniform(0, np.pi, (5, N)))
    routed = layer(fn, router())
    with pytest.warns(CompiledPathWarning, match=reason):
        got = value_and_grads(routed, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledPathWarning)  # once, not every call
        again = value_and_grads(routed, x)
    want = value_and_grads(layer(fn, qml.device("default.qubit", wires=N)), x)
    for a, b, c in zip(got, again, want):
        torch.testing.assert_close(a, c, atol=1e-10, rtol=0)
        torch.testing.assert_close(b, c, atol=1e-10, rtol=0)
    assert routed._compiled_host.last_path.startswith("qnode (recording the circuit failed")
    assert all(run.path == "qnode" for run in routed.qnode.device.routing_report().recent)


def test_a_backend_the_compiled_path_cannot_drive_runs_the_qnode_path():
    device = router(backends=["lightning.qubit"])
    routed = layer(single_expval, device)
    x = torch.rand(4, N, dtype=torch.float64)
    with pytest.warns(CompiledPathWarning, match="the router chose 'lightning.qubit'"):
        got = value_and_grads(routed, x)
    want = value_and_grads(layer(single_expval, qml.device("default.qubit", wires=N)), x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    explanation = str(device.explain(routed.qnode, x, routed.qnode_weights["weights"]))
    assert "layer path: qnode (the router chose 'lightning.qubit'" in explanation


def test_parameter_shift_qnodes_keep_their_method():
    with pytest.warns(CompiledPathWarning, match="diff_method='parameter-shift'"):
        routed = layer(single_expval, router(), diff_method="parameter-shift")
    assert not routed.compiled  # TorchLayer's own QNode call: inputs are not trained
    x = torch.rand(2, N)
    reference = layer(single_expval, qml.device("default.qubit", wires=N))
    reference.load_state_dict(routed.state_dict())
    assert torch.allclose(routed(x), reference(x), atol=1e-6)


def test_tracker_log_callbacks_and_explain_see_the_compiled_runs(tmp_path):
    collector = Collector()
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite")
    device = router(callbacks=[collector, recorder])
    routed = layer(single_expval, device)
    x = torch.tensor(np.random.default_rng(0).uniform(0, np.pi, (4, N)))
    with qml.Tracker(device) as tracker:
        value_and_grads(routed, x)
    backend = collector.records[0].backend
    assert backend.startswith("qstore.batched")
    assert tracker.totals[f"executions:{backend}"] == 8  # forward and VJP, 4 circuits each
    assert [r.task for r in collector.records] == ["execute", "vjp"]
    forward = collector.records[0]
    angles = [op.data[0] for op in forward.tape.operations if op.name == "RX"][:N]
    np.testing.assert_allclose(np.stack(angles, axis=1), x.numpy(), atol=1e-12)
    want = _state(x[1].numpy(), routed.qnode_weights["weights"].detach().double().numpy())
    assert abs(np.vdot(forward.states[1], want)) == pytest.approx(1.0, abs=1e-10)
    recorder.flush(timeout=30)
    assert recorder.stats().delivered == 4  # the forward pass's four states
    hit = store.query_similar(want, top_k=1)[0]
    assert hit.fidelity == pytest.approx(1.0, abs=1e-6)
    report = device.routing_report()
    assert [run.path for run in report.recent] == ["compiled", "compiled"]
    assert "compiled path" in str(report) and "2 group(s) compiled" in str(report)
    explanation = str(device.explain(routed.qnode, x, routed.qnode_weights["weights"]))
    assert "layer path: compiled" in explanation


def _state(x, weights):
    @qml.qnode(qml.device("default.qubit", wires=N))
    def state():
        qml.AngleEmbedding(x, wires=range(N))
        qml.StronglyEntanglingLayers(weights, wires=range(N))
        return qml.state()

    return state()


def test_a_result_cache_answers_repeated_inference_and_training_runs(tmp_path):
    """A cache that keeps free results answers an inference call it has seen; a
    training call runs (its VJP needs the forward states)."""
    with open_store(path=tmp_path / "db") as store:
        cache = ResultCache(store, simulators=True)
        device = router(callbacks=[cache])
        routed = layer(several_measurements, device)
        reference = layer(several_measurements, qml.device("default.qubit", wires=N))
        x = torch.tensor(np.random.default_rng(2).uniform(0, np.pi, (4, N)))
        with torch.no_grad():
            first, again, other = routed(x), routed(x), routed(x + 0.1)
            torch.testing.assert_close(first, reference(x), atol=1e-10, rtol=0)
            torch.testing.assert_close(other, reference(x + 0.1), atol=1e-10, rtol=0)
        torch.testing.assert_close(again, first, atol=0, rtol=0)
        assert cache.savings().hits == 1
        assert [run.cached for run in device.routing_report().recent] == [0, 4, 0]
        got = value_and_grads(routed, x)
        for a, b in zip(got, value_and_grads(reference, x)):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
        assert cache.savings().hits == 1
        assert routed._compiled_host.last_path == "compiled"


def test_float32_inference_under_no_grad_is_answered_from_a_result_cache(tmp_path):
    """Under ``torch.no_grad()`` no backward pass follows, even when the weights (float32
    parameters, passed as they are) require grad: the call is an inference call."""
    with open_store(path=tmp_path / "db") as store:
        cache = ResultCache(store, simulators=True)
        routed = layer(single_expval, router(callbacks=[cache], backends=["qstore.batched"]))
        x = torch.rand(4, N)
        with torch.no_grad():
            first, again = routed(x), routed(x)
        assert cache.savings().hits == 1
        torch.testing.assert_close(again, first, atol=0, rtol=0)
        want = layer(single_expval, qml.device("default.qubit", wires=N))(x)
        torch.testing.assert_close(first, want.detach(), atol=2e-6, rtol=0)


def two_of_three_wires(inputs, weights):
    """Wire 1 unused: the router's tapes run on wires 0 and 2 moved to 0 and 1."""
    qml.RX(inputs[..., 0], wires=0)
    qml.RY(weights[0, 0, 0] * inputs[..., 2], wires=2)
    qml.CNOT([0, 2])
    return qml.expval(qml.Z(2)), qml.expval(qml.X(0))


@pytest.mark.parametrize("fn", [several_measurements, reupload, two_of_three_wires])
def test_the_qnode_path_and_the_compiled_path_answer_each_other_from_a_result_cache(tmp_path, fn):
    """One execution, one key: an inference call on either path finds what the other
    stored (the compiled path's circuit is keyed as the QNode path's device tape)."""
    with open_store(path=tmp_path / "db") as store:
        cache = ResultCache(store, simulators=True)
        device = router(callbacks=[cache], backends=["qstore.batched"])
        compiled = layer(fn, device)
        qnode_path = layer(fn, device, compiled=False)  # the same weights
        reference = layer(fn, qml.device("default.qubit", wires=N))
        rng = np.random.default_rng(5)
        x, y = (torch.tensor(rng.uniform(0, np.pi, (4, N))) for _ in range(2))
        with torch.no_grad():
            stored_by_qnode = qnode_path(x)
            assert cache.savings().hits == 0
            from_cache = compiled(x)
            assert cache.savings().hits == 1
            stored_by_compiled = compiled(y)
            assert cache.savings().hits == 1
            back = qnode_path(y)
            assert cache.savings().hits == 2
            want_x, want_y = reference(x), reference(y)
        assert compiled._compiled_host.last_path == "compiled"
        assert [(r.path, r.cached) for r in device.routing_report().recent] == [
            ("qnode", 0),
            ("compiled", 4),
            ("compiled", 0),
            ("qnode", 4),
        ]
        for got, want in [(stored_by_qnode, want_x), (from_cache, want_x)]:
            torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
        for got, want in [(stored_by_compiled, want_y), (back, want_y)]:
            torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_a_router_on_dask_runs_compiled_batches_here_and_says_why():
    """The cluster's address is never reachable: the compiled batch must not need it."""
    config = {"executor": {"kind": "dask", "address": "tcp://127.0.0.1:9", "timeout": 1}}
    device = router(router_config=config)
    routed = layer(pair, device)
    x = torch.rand(3, N, dtype=torch.float64)
    got = value_and_grads(routed, x)
    for a, b in zip(got, value_and_grads(layer(pair, qml.device("default.qubit", wires=N)), x)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    assert routed._compiled_host.last_path == f"compiled ({IN_THIS_PROCESS})"
    explanation = str(device.explain(routed.qnode, x, routed.qnode_weights["weights"]))
    assert f"layer path: compiled ({IN_THIS_PROCESS})" in explanation
    assert IN_THIS_PROCESS in str(device.routing_report())


# ------------------------------------------------------- engine failures fall back
def test_an_engine_failure_in_the_forward_pass_runs_the_batch_through_the_qnode_path(
    monkeypatch,
):
    engine_without_memory(monkeypatch)
    device = router(backends=["qstore.batched", "default.qubit"])
    routed = layer(pair, device)  # a circuit default.qubit differentiates on the router
    reference = layer(pair, qml.device("default.qubit", wires=N))
    x = torch.tensor(np.random.default_rng(3).uniform(0, np.pi, (4, N)))
    with pytest.warns(CompiledPathWarning, match=r"qstore.batched failed on the compiled path"):
        got = value_and_grads(routed, x)
    for a, b in zip(got, value_and_grads(reference, x)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledPathWarning)  # said once
        again = value_and_grads(routed, x)
    for a, b in zip(again, got):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    report = device.routing_report()
    forward = report.recent[0]
    assert forward.path == "qnode" and forward.backend == "default.qubit"
    assert forward.failed[0].startswith("qstore.batched: compiled path (execute): MemoryError")
    assert "fallback after 2 failure(s)" in forward.reason  # the compiled path, then the tapes'
    # per call: the compiled forward pass, then the tapes' forward pass and their VJP
    assert report.totals["qstore.batched"].failures == 6
    explanation = str(device.explain(routed.qnode, x, routed.qnode_weights["weights"]))
    assert "layer path: qnode (qstore.batched failed on the compiled path (execute: " in explanation


def test_an_engine_failure_in_the_vjp_recomputes_the_batch_through_the_qnode_path(monkeypatch):
    failing = engine_without_memory(monkeypatch, gone=False)
    device = router(backends=["qstore.batched", "default.qubit"])
    routed = layer(single_expval, device)
    reference = layer(single_expval, qml.device("default.qubit", wires=N))
    x = torch.tensor(np.random.default_rng(4).uniform(0, np.pi, (3, N)), requires_grad=True)
    y = routed(x)
    assert routed._compiled_host.last_path == "compiled"
    failing.memory_gone = True  # between the forward pass and its VJP
    cot = torch.tensor(np.random.default_rng(1).normal(size=y.shape))
    with pytest.warns(CompiledPathWarning, match=r"compiled path \(vjp: MemoryError"):
        (y * cot).sum().backward()
    want = value_and_grads(reference, x.detach())
    torch.testing.assert_close(y.detach(), want[0], atol=1e-10, rtol=0)
    torch.testing.assert_close(x.grad, want[1], atol=1e-10, rtol=0)
    torch.testing.assert_close(routed.qnode_weights["weights"].grad, want[2], atol=1e-10, rtol=0)
    runs = device.routing_report().recent
    assert [(r.path, r.task, r.backend) for r in runs[:1]] == [
        ("compiled", "execute", "qstore.batched")
    ]
    fallback = [r for r in runs[1:] if r.failed]
    assert fallback and fallback[0].failed[0].startswith("qstore.batched: compiled path (vjp): ")


def test_bad_input_still_raises_on_the_compiled_path_and_nothing_falls_back():
    device = router()
    routed = layer(single_expval, device)
    x = torch.rand(3, N, dtype=torch.float64)
    routed(x)  # recorded and checked on finite values
    before = device.routing_report().totals["qstore.batched"]
    x[1, 2] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompiledPathWarning)
        with pytest.raises(InvalidParameterError, match="not finite"):
            routed(x)
    assert device.routing_report().totals["qstore.batched"] == before  # nothing ran
    assert routed._compiled_host.last_path == "compiled"
