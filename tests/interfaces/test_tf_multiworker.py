"""TF MultiWorkerMirroredStrategy through qstore.router: two workers on loopback
(TF_CONFIG) take one step on halves of a global batch; their all-reduced gradients
must equal one process's gradients on the whole batch."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tf_multiworker.py"
BATCH, SEED = 8, 3


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _load_example():
    spec = importlib.util.spec_from_file_location("tf_multiworker_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_worker_step_equals_single_process_step(tmp_path):
    out = tmp_path / "grads.npz"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    args = ["--grad-check", str(out), "--batch-size", str(BATCH), "--precision", "double"]
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "OMP_NUM_THREADS": "1"}
        command = [sys.executable, str(EXAMPLE), *args, "--seed", str(SEED)]
        workers.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    for worker in workers:
        log, _ = worker.communicate(timeout=240)
        assert worker.returncode == 0, log.decode()[-3000:]
    saved = np.load(out)
    distributed = [saved[f"arr_{i}"] for i in range(len(saved.files))]

    example = _load_example()
    model = example.make_model(4, 2, SEED, example.router_config("double"))
    x, y = example.dataset(128, SEED)
    first = example.shuffled(len(x), SEED)[:BATCH]
    assert len(set(y[first].tolist())) == 2  # both classes in the batch
    grads, _ = example.scaled_loss_gradients(model, x[first], y[first], BATCH)

    assert len(distributed) == len(grads) == 5  # two Dense layers and the quantum weights
    for got, want in zip(distributed, grads):
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)
