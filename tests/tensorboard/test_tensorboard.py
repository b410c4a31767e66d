"""Router metrics in TensorBoard: counters from real router runs, event files that
TensorBoard's own reader (``EventAccumulator``) reads back, the Keras 3 callback under
the tensorflow, jax and torch backends, the helper for torch loops, and the deprecated
``qstore_pl.monitoring`` path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pennylane as qml
import pytest
from ionq_support import config, emulator_server, ionq
from tensorboard_events import read_scalars

import qstore_pl
from qstore_pl.callbacks import DeviceCallback
from qstore_pl.tensorboard import EventWriter, log_router_metrics
from qstore_pl.tensorboard.metrics import RouterMetrics, StepTimer, difference

emulator = pytest.fixture(emulator_server, name="emulator")
HERE = Path(__file__).resolve().parent
TESTS = HERE.parent  # ionq_support, tensorboard_events
N_TRAIN, N_VAL, BATCH = 12, 5, 4


def two_qubit_qnode(dev, shots=None):
    @qml.qnode(dev, shots=shots)
    def circuit(x):
        qml.RX(x, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return circuit


def router_circuits(dev) -> dict[str, int]:
    """Circuits per backend from the router's own routing log (an independent count)."""
    return {name: t.circuits for name, t in dev.routing_report().totals.items()}


# ------------------------------------------------------------------ event files
def test_event_writer_round_trip(tmp_path):
    writer = EventWriter(tmp_path / "run")
    writer.add_scalars({"a/b": 1.5, "c": 3}, step=2)
    writer.add_scalar("a/b", -2.25, step=300)
    writer.flush()
    writer.add_scalar("late", 7.0, step=2**40)  # int64 steps beyond 32 bits
    writer.close()
    assert read_scalars(tmp_path / "run") == {
        2: {"a/b": 1.5, "c": 3.0},
        300: {"a/b": -2.25},
        2**40: {"late": 7.0},
    }


def test_event_writer_keeps_its_queue_when_a_flush_fails(tmp_path):
    run = tmp_path / "run"
    writer = EventWriter(run)
    writer.add_scalar("loss", 0.5, 1)
    shutil.rmtree(run)  # the folder went away (an unmounted disk, a cleanup job)
    with pytest.raises(FileNotFoundError):
        writer.flush()
    run.mkdir()
    writer.add_scalar("loss", 0.25, 2)
    writer.flush()
    assert read_scalars(run) == {1: {"loss": 0.5}, 2: {"loss": 0.25}}


def test_event_writer_rejects_non_numbers_and_keeps_what_it_had(tmp_path):
    writer = EventWriter(tmp_path)
    writer.add_scalar("loss", 0.5, 1)
    with pytest.raises(ValueError, match=r"scalar 'loss' must be a real number"):
        writer.add_scalar("loss", "high", 2)
    with pytest.raises(ValueError, match=r"step must fit a signed 64-bit integer"):
        writer.add_scalar("loss", 1.0, 2**63)
    writer.close()
    assert read_scalars(tmp_path) == {1: {"loss": 0.5}}


# ------------------------------------------------------------------ metrics
def test_metrics_count_what_the_router_ran():
    dev = qml.device("qstore.router", wires=2)
    metrics = RouterMetrics(dev)
    circuit = two_qubit_qnode(dev)
    empty = metrics.snapshot()
    assert empty["router/executions/total"] == 0.0 and empty["router/cache_hits/total"] == 0.0

    for x in (0.1, 0.2, 0.3):
        assert circuit(x) == pytest.approx(np.cos(x))
    first = metrics.delta()
    assert first["router/executions/total"] == 3.0
    assert first["router/shots/total"] == 0.0
    assert first["router/seconds/total"] > 0.0

    circuit(np.array([0.1, 0.2, 0.3, 0.4]))  # one broadcast tape: four circuits
    two_qubit_qnode(dev, shots=100)(0.5)
    second = metrics.delta()
    assert second["router/executions/total"] == 5.0
    assert second["router/shots/total"] == 100.0
    assert second["router/gradient_executions/total"] == 0.0

    x = qml.numpy.array(0.3, requires_grad=True)
    assert qml.grad(circuit)(x) == pytest.approx(-np.sin(0.3))
    third = metrics.delta()
    assert third["router/gradient_executions/total"] >= 1.0

    # per-backend tags add up to the router's own log, backend by backend
    totals = metrics.snapshot()
    for name, circuits in router_circuits(dev).items():
        assert totals[f"router/executions/{name}"] == circuits
    assert totals["router/executions/total"] == sum(router_circuits(dev).values())
    assert metrics.delta()["router/executions/total"] == 0.0


def test_metrics_as_constructor_callback_and_difference():
    metrics = RouterMetrics()
    dev = qml.device("qstore.router", wires=2, callbacks=[metrics])
    two_qubit_qnode(dev)(0.4)
    assert metrics.snapshot()["router/executions/total"] == 1.0
    assert "router/cache_hits/total" not in metrics.snapshot()  # unbound: no report read
    metrics.bind(dev)
    before = metrics.snapshot()
    two_qubit_qnode(dev)(0.5)
    assert difference(metrics.snapshot(), before)["router/executions/total"] == 1.0
    metrics.reset()
    assert metrics.snapshot()["router/executions/total"] == 0.0


def test_attach_refuses_other_devices():
    with pytest.raises(TypeError, match=r"qstore.router devices"):
        RouterMetrics(qml.device("default.qubit", wires=1))


def test_cost_cache_hits_and_savings_on_a_metered_router(emulator, tmp_path):
    flat = {"model": "per_gate_shot", "cost_1q": 1e-9, "cost_2q": 1e-9, "minimum": 2.0}

    class CacheOf(DeviceCallback):
        """Answers x = 0.7 from a 'cache' (the exact value), everything else runs."""

        def lookup(self, tape, backend):
            if np.isclose(tape.operations[0].data[0], 0.7):
                return np.float64(np.cos(0.7))
            return None

    cfg = config(tmp_path, ionq("hardware", "qpu.aria-1", pricing=flat))
    dev = qml.device("qstore.router", wires=2, router_config=cfg, callbacks=[CacheOf()])
    metrics = RouterMetrics(dev)
    circuit = two_qubit_qnode(dev, shots=250)
    log_dir = tmp_path / "logs"
    with qstore_pl.purpose("validation"):
        circuit(0.1)
        circuit(0.2)  # epoch 0: two jobs of 2 USD each
        log_router_metrics(log_dir, metrics, 0)
        circuit(0.7)  # epoch 1: answered by the cache, 2 USD saved
        log_router_metrics(log_dir, metrics, 1)

    logged = read_scalars(log_dir)
    assert logged[0]["router/executions/hardware"] == 2.0
    assert logged[0]["router/shots/hardware"] == 500.0
    assert logged[0]["router/cost_usd/hardware"] == pytest.approx(4.0)
    assert logged[0]["router/estimated_cost_usd/total"] == pytest.approx(4.0)
    assert logged[0]["router/saved_usd/total"] == 0.0
    assert logged[0]["router/cache_hits/hardware"] == 0.0
    assert logged[1]["router/cost_usd/hardware"] == 0.0
    assert logged[1]["router/cache_hits/hardware"] == 1.0
    assert logged[1]["router/saved_usd/total"] == pytest.approx(2.0)
    assert logged[1]["router/estimated_cost_usd/total"] == pytest.approx(2.0)
    assert dev.cost_report().total == pytest.approx(4.0)  # the ledger agrees
    assert len(emulator.jobs) == 2


# ------------------------------------------------------------------ torch loop
def test_torch_loop_logs_each_epoch(tmp_path):
    import torch

    dev = qml.device("qstore.router", wires=2)
    metrics = RouterMetrics(dev)

    @qml.qnode(dev)
    def circuit(inputs, weights):
        qml.RX(inputs[..., 0], 0)
        qml.RY(weights[0], 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    layer = qml.qnn.TorchLayer(circuit, {"weights": (1,)})
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.linspace(0.1, 1.2, N_TRAIN, dtype=torch.float64).reshape(-1, 1)
    y = torch.cos(x[:, 0])
    timer = StepTimer()
    logged_by_hand = []
    for epoch in range(2):
        before = router_circuits(dev)
        for i in range(0, N_TRAIN, BATCH):
            with timer.step():
                optimiser.zero_grad()
                loss = ((layer(x[i : i + BATCH]) - y[i : i + BATCH]) ** 2).mean()
                loss.backward()
                optimiser.step()
        written = log_router_metrics(
            tmp_path, metrics, epoch, timer=timer, extra={"loss": loss.item()}
        )
        after = router_circuits(dev)
        ran = sum(after.values()) - sum(before.values())
        assert written["router/executions/total"] == ran
        assert written["router/executions/total"] - written[
            "router/gradient_executions/total"
        ] == pytest.approx(N_TRAIN)  # forward circuits: one per sample
        assert written["time/steps"] == N_TRAIN // BATCH
        logged_by_hand.append(written)

    logged = read_scalars(tmp_path)
    for epoch, written in enumerate(logged_by_hand):
        assert logged[epoch]["router/executions/total"] == written["router/executions/total"]
        assert logged[epoch]["time/step_seconds"] == pytest.approx(
            written["time/step_seconds"], rel=1e-6
        )
        assert logged[epoch]["loss"] == pytest.approx(written["loss"], rel=1e-6)


def test_log_router_metrics_takes_any_add_scalar_writer():
    class Recorder:
        def __init__(self):
            self.calls = []

        def add_scalar(self, tag, value, step):
            self.calls.append((tag, value, step))

    dev = qml.device("qstore.router", wires=2)
    metrics = RouterMetrics(dev)
    two_qubit_qnode(dev)(0.3)
    recorder = Recorder()
    log_router_metrics(recorder, metrics, 5)
    assert ("router/executions/total", 1.0, 5) in recorder.calls
    with pytest.raises(TypeError, match="add_scalar"):
        log_router_metrics(object(), metrics, 0)
    with pytest.raises(ValueError, match="non-negative int"):
        log_router_metrics(recorder, metrics, -1)
    with pytest.raises(TypeError, match="RouterMetrics"):
        log_router_metrics(recorder, {"router/executions/total": 1.0}, 0)


# ------------------------------------------------------------------ Keras 3
def keras_fit(log_dir: str) -> dict:
    """Two epochs of ``model.fit`` whose first layer runs a qnode on the router.

    The quantum layer is not differentiated (the model is compiled to run eagerly and
    the layer hands the circuit plain numbers), but every forward pass, training and
    validation, runs one broadcast circuit per sample through the router.
    """
    import keras

    from qstore_pl.tensorboard import RouterTensorBoard

    dev = qml.device("qstore.router", wires=2)
    metrics = RouterMetrics(dev)
    circuit = two_qubit_qnode(dev)

    class QuantumFeature(keras.layers.Layer):
        def call(self, x):
            try:
                angles = keras.ops.convert_to_numpy(x)[:, 0].astype(np.float64)
            except Exception:  # abstract values: jax's shape-only trace before fit
                return keras.ops.concatenate([x, keras.ops.zeros_like(x[:, :1])], axis=1)
            values = np.asarray(circuit(angles), dtype="float32").reshape(-1, 1)
            return keras.ops.concatenate([x, keras.ops.convert_to_tensor(values)], axis=1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[1] + 1)

    model = keras.Sequential([keras.Input((2,)), QuantumFeature(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, np.pi, (N_TRAIN + N_VAL, 2)).astype("float32")
    y = np.cos(x[:, :1])
    callback = RouterTensorBoard(metrics, log_dir)
    before = sum(router_circuits(dev).values())
    history = model.fit(
        x[:N_TRAIN],
        y[:N_TRAIN],
        validation_data=(x[N_TRAIN:], y[N_TRAIN:]),
        batch_size=BATCH,
        epochs=2,
        callbacks=[callback],
        verbose=0,
    )
    return {
        "backend": keras.backend.backend(),
        "circuits": sum(router_circuits(dev).values()) - before,
        "written": callback.written,
        "loss": [float(v) for v in history.history["loss"]],
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def check_keras_logs(log_dir, result) -> None:
    steps = -(-N_TRAIN // BATCH)
    logged = read_scalars(log_dir)
    assert sorted(logged) == [0, 1]
    for epoch in (0, 1):
        scalars = logged[epoch]
        # every sample of the epoch, training and validation, ran one circuit
        assert scalars["router/executions/total"] == N_TRAIN + N_VAL
        assert scalars["router/gradient_executions/total"] == 0.0
        assert scalars["time/steps"] == steps
        assert scalars["time/step_seconds"] > 0.0
        assert scalars["time/step_seconds"] == pytest.approx(
            result["written"][epoch]["time/step_seconds"], rel=1e-6
        )
        assert scalars["epoch/loss"] == pytest.approx(result["loss"][epoch], rel=1e-6)
        assert "epoch/val_loss" in scalars
        backends = [t for t in scalars if t.startswith("router/executions/") and "total" not in t]
        assert sum(scalars[t] for t in backends) == N_TRAIN + N_VAL
    assert result["circuits"] == 2 * (N_TRAIN + N_VAL)  # the router's own count


def test_keras_callback_in_process(tmp_path):
    result = keras_fit(str(tmp_path))
    check_keras_logs(tmp_path, result)


def test_keras_callback_under_the_other_backends(tmp_path):
    import keras

    others = [b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend()]
    code = (
        "import json, sys; sys.path[:0] = sys.argv[1:3]; import test_tensorboard as t; "
        "print(json.dumps(t.keras_fit(sys.argv[3])))"
    )
    runs = {}
    for backend in others:  # the two run side by side
        env = {**os.environ, "KERAS_BACKEND": backend}
        log_dir = tmp_path / backend
        runs[backend] = (
            log_dir,
            subprocess.Popen(
                [sys.executable, "-c", code, str(HERE), str(TESTS), str(log_dir)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    for backend, (log_dir, process) in runs.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"KERAS_BACKEND={backend} failed:\n{err[-3000:]}"
        result = json.loads(out.strip().splitlines()[-1])
        assert result["backend"] == backend
        assert not result["tensorflow_imported"]  # the event files need no TensorFlow
        check_keras_logs(log_dir, result)


def test_keras_callback_needs_router_metrics(tmp_path):
    from qstore_pl.tensorboard import RouterTensorBoard

    with pytest.raises(TypeError, match="RouterMetrics"):
        RouterTensorBoard({"router/executions/total": 0.0}, tmp_path)
