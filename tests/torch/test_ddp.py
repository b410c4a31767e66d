"""torch DDP through qstore.router: two processes on loopback (gloo) take one step on
halves of a global batch; their averaged gradients must equal one process's gradients
on the whole batch."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_torch.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("ddp_torch_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_process_ddp_step_equals_single_process_step(tmp_path):
    out = tmp_path / "grads.pt"
    batch = 8
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
        "--nproc_per_node=2", str(EXAMPLE), "--grad-check", str(out),
        "--batch-size", str(batch), "--precision", "double", "--seed", "3",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = torch.load(out)
    assert saved["shard_sizes"] == [batch // 2, batch // 2]

    example = _load_example()
    model = example.make_model(4, 2, seed=3, config=example.router_config("double", None))
    x, y = example.dataset(128, seed=3)
    first = example.shuffled(len(x), seed=3)[:batch]
    assert len(set(y[first].tolist())) == 2  # both classes in the batch
    torch.nn.functional.cross_entropy(model(x[first]), y[first]).backward()
    single = {name: p.grad for name, p in model.named_parameters()}

    assert saved["grads"].keys() == single.keys()
    for name, grad in single.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(saved["grads"][name], grad, rtol=1e-9, atol=1e-12)
