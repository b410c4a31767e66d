"""Data-parallel training of a TorchLayer model through ``qstore.router`` with torch DDP.

Every process holds a replica of the hybrid model (Linear → TorchLayer on
``qstore.router`` → Linear), runs its share of each global batch through its own
router, and DDP averages the gradients over the processes (gloo, CPU), so one step
equals a single-process step on the whole global batch.

Run on one machine with two processes::

    torchrun --standalone --nproc_per_node=2 examples/ddp_torch.py --epochs 3

On several machines give torchrun ``--nnodes``, ``--node_rank`` and ``--rdzv_endpoint``
(deploy/k8s/pytorchjob.yaml does this on Kubernetes). Each process routes its own
circuits; add ``--dask tcp://scheduler:8786`` to fan them out over a Dask cluster too.

Threads: each process's simulators use its share of the node's cores (torchrun's
``LOCAL_WORLD_SIZE``; torchrun also sets ``OMP_NUM_THREADS=1`` for torch), fewer while
other processes keep cores busy, so two ranks on two cores run one thread each
instead of four spinning threads fighting for two cores; ``--show-threads`` prints
each rank's decision (``qstore_pl.support.threads``).

``--grad-check PATH`` runs a single step on a fixed global batch and has rank 0 save
the averaged gradients there (the test suite compares them with a single process).
"""

from __future__ import annotations

import argparse

import numpy as np
import pennylane as qml
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from qstore_pl.cli.quickstart import build_model, two_moons
from qstore_pl.support import threads


def router_config(precision: str, dask_address: str | None) -> dict:
    """The router config every process uses."""
    config: dict = {"precision": precision}
    if dask_address:
        config["executor"] = {"kind": "dask", "address": dask_address}
    return config


def make_model(n_qubits: int, n_layers: int, seed: int, config: dict) -> torch.nn.Module:
    """The hybrid model, with weights that depend on ``seed`` only."""
    torch.manual_seed(seed)
    dev = qml.device("qstore.router", wires=n_qubits, router_config=config, seed=seed)
    model, _ = build_model(n_qubits, n_layers, dev)
    return model.double()


def dataset(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two half-moons as float64 features and integer labels."""
    x, y = two_moons(samples, seed=seed)
    return torch.tensor(x, dtype=torch.float64), torch.tensor(y)


def shuffled(samples: int, seed: int) -> np.ndarray:
    """The order in which samples are visited."""
    return np.random.default_rng(seed).permutation(samples)


def shard(x, rank: int, world: int) -> slice:
    """This process's contiguous, equal share of a global batch."""
    size = len(x) // world
    return slice(rank * size, (rank + 1) * size)


def train_step(model, optimiser, x, y) -> float:
    """One step; under DDP, backward() also averages the gradients over processes."""
    optimiser.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimiser.step()
    return loss.item()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch size")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("single", "double"), default="single")
    parser.add_argument("--dask", default=None, help="Dask scheduler address (optional)")
    parser.add_argument("--grad-check", default=None, help="save one step's gradients here")
    parser.add_argument("--show-threads", action="store_true", help="print each rank's threads")
    args = parser.parse_args(argv)

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.show_threads:
        print(f"rank {rank}: {threads.report()}", flush=True)
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of {world}")
    config = router_config(args.precision, args.dask)
    model = DistributedDataParallel(make_model(args.qubits, args.layers, args.seed, config))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    x, y = dataset(args.samples, args.seed)

    order = shuffled(len(x), args.seed)
    if args.grad_check:  # the first global batch of training
        batch = order[: args.batch_size]
        mine = batch[shard(batch, rank, world)]
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x[mine]), y[mine]).backward()
        sizes = [None] * world
        dist.all_gather_object(sizes, len(mine))
        if rank == 0:
            grads = {name: p.grad for name, p in model.module.named_parameters()}
            torch.save({"grads": grads, "shard_sizes": sizes}, args.grad_check)
        dist.destroy_process_group()
        return

    for epoch in range(args.epochs):
        losses = []
        for start in range(0, len(x) - args.batch_size + 1, args.batch_size):
            batch = order[start : start + args.batch_size]
            mine = batch[shard(batch, rank, world)]
            losses.append(train_step(model, optimiser, x[mine], y[mine]))
        mean = torch.tensor(np.mean(losses))
        dist.all_reduce(mean)
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {float(mean) / world:.4f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
