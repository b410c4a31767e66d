"""W1 training with finite shots: sampled outputs, parameter-shift gradients.

The W1 train step (batch 32, RX encoding, 4 layers of RY/RZ and a CNOT ring, <Z> on
every qubit, Linear, cross-entropy, Adam) with a QNode of ``--shots`` shots:

- ``router compiled``: ``qstore_pl.torch.TorchLayer`` on ``qstore.router``: the compiled
  path samples the engine's states and shifts the angles in its parameter table;
- ``router QNode path``: PennyLane's ``qml.qnn.TorchLayer`` on the router: PennyLane's
  parameter-shift transform builds the shifted tapes, the router runs them;
- ``default.qubit`` and ``lightning.qubit``: PennyLane's TorchLayer, parameter shift;
- ``TFQ 0.7.6`` (``--tfq-python``): ``tfq.layers.PQC`` with ``repetitions=shots`` and
  the ``ParameterShift`` differentiator (``benchmarks/w1_tfq.py --shots``);
- ``router JAX compiled``: the same model in JAX (optax's Adam, the step under
  ``jax.jit``) around ``qstore_pl.jax.circuit_function`` of the router QNode: the angle
  table's compiled path samples and shifts whole table rows;
- ``router JAX QNode path`` and ``default.qubit JAX``: the JAX model around the QNode
  itself with ``interface="jax"`` and ``diff_method="parameter-shift"``, jitted
  (PennyLane's JAX interface and parameter-shift transform; what ``circuit_function``
  ran with shots before), on the router and on default.qubit.

Every contender runs in a process of its own, in turn, round after round, with
``OMP_WAIT_POLICY=PASSIVE`` (unless set, as ``bench_compiled.py`` does: torch is
imported before qstore_pl here, so its OpenMP threads would otherwise spin beside a
busy process); the table gives the median step and each contender's ratio to the
compiled path, measured in the same round. ``--load 0 1`` repeats each round beside
one busy process.

    python benchmarks/bench_shots.py --qubits 4 8 --shots 1000 --tfq-python TFQ_VENV/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from busy import add_load_option, busy_processes

HERE = Path(__file__).parent
PENNYLANE = {
    "router compiled": ("qstore.router", True),
    "router QNode path": ("qstore.router", False),
    "default.qubit": ("default.qubit", False),
    "lightning.qubit": ("lightning.qubit", False),
}

#: W1's model in JAX: the device, and whether ``circuit_function`` runs the QNode
JAX = {
    "router JAX compiled": ("qstore.router", True),
    "router JAX QNode path": ("qstore.router", False),
    "default.qubit JAX": ("default.qubit", False),
}


def jax_step(contender: str, n: int, shots: int):
    """W1's train step in JAX on ``contender``: a jitted step with optax's Adam."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import pennylane as qml
    from w1_workload import BATCH, LAYERS, w1_circuit

    jax.config.update("jax_enable_x64", True)
    device, compiled = JAX[contender]
    method = "best" if compiled else "parameter-shift"
    if device.startswith("qstore."):
        import qstore_pl  # noqa: F401

    qnode = qml.QNode(
        w1_circuit(n), qml.device(device, wires=n), interface="jax", diff_method=method
    )
    qnode = qml.set_shots(qnode, shots=shots)
    if compiled:
        from qstore_pl.jax import circuit_function

        quantum = circuit_function(qnode)
    else:

        def quantum(x, weights):
            return jnp.stack(qnode(x, weights), axis=-1)

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0, np.pi, (BATCH, n)))
    y = jnp.asarray(rng.integers(0, 2, BATCH))
    params = {
        "weights": jnp.asarray(rng.uniform(0, 2 * np.pi, (LAYERS, n, 2))),
        "head": jnp.asarray(rng.normal(0, 0.3, (n, 2))),
        "bias": jnp.zeros(2),
    }
    optimiser = optax.adam(0.01)

    def loss(params):
        logits = quantum(x, params["weights"]) @ params["head"] + params["bias"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    held = [params, optimiser.init(params)]

    def step():
        held[0], held[1], value = train(*held)
        jax.block_until_ready(value)

    return step


def child(contender: str, n: int, shots: int, seconds: float) -> dict:
    """In this process: W1's model on ``contender``, its first and later steps."""
    import pennylane as qml
    import torch
    from w1_workload import step_function, time_steps, torch_model, w1_circuit

    torch.set_num_threads(2)
    if contender in JAX:
        first, times, _ = time_steps(jax_step(contender, n, shots), seconds, 3)
        return {"first_s": first, "median_ms": 1e3 * statistics.median(times), "steps": len(times)}
    device, compiled = PENNYLANE[contender]
    if device.startswith("qstore."):
        import qstore_pl  # noqa: F401

    dev = qml.device(device, wires=n)
    qnode = qml.QNode(w1_circuit(n), dev, interface="torch", diff_method="parameter-shift")
    if compiled:  # the compiled path takes shots with "best" (PennyLane's own choice)
        qnode = qml.QNode(w1_circuit(n), dev, interface="torch")
    model, optimiser, loss_fn, x, y = torch_model(qml.set_shots(qnode, shots=shots), n, 0, compiled)
    first, times, _ = time_steps(
        step_function("train", model, optimiser, loss_fn, x, y), seconds, 3
    )
    return {"first_s": first, "median_ms": 1e3 * statistics.median(times), "steps": len(times)}


def run(contender: str, n: int, args) -> dict | None:
    """One contender at one width in a fresh process."""
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONWARNINGS": "ignore"}
    if contender.startswith("TFQ"):
        if not args.tfq_python:
            return None
        cmd = [args.tfq_python, str(HERE / "w1_tfq.py"), "--qubits", str(n)]
        cmd += ["--shots", str(args.shots), "--seconds", str(args.seconds), "--min-steps", "3"]
    else:
        cmd = [sys.executable, __file__, "--child", contender, "--qubits", str(n)]
        cmd += ["--shots", str(args.shots), "--seconds", str(args.seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=HERE)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"  {contender} at {n} qubits failed: {tail[0][:200]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed steps per run")
    parser.add_argument("--contenders", nargs="+", default=[*PENNYLANE, "TFQ 0.7.6", *JAX])
    parser.add_argument("--tfq-python", help="python of a virtualenv with tensorflow-quantum")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_load_option(parser, "each contender")
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.qubits[0], args.shots, args.seconds)
        print(json.dumps(result), flush=True)
        return
    medians: dict[tuple, list[float]] = {}
    ratios: dict[tuple, list[float]] = {}
    for round_no in range(args.rounds):
        for n in args.qubits:
            for load in args.load:
                found = {}
                with busy_processes(load):
                    for contender in args.contenders:
                        result = run(contender, n, args)
                        if result is not None:
                            found[contender] = result["median_ms"]
                            medians.setdefault((n, load, contender), []).append(found[contender])
                            print(
                                f"round {round_no + 1} n={n} load {load} {contender}: "
                                f"{found[contender]:.1f} ms",
                                flush=True,
                            )
                base = found.get("router compiled")
                for contender, ms in found.items():
                    if base:
                        ratios.setdefault((n, load, contender), []).append(ms / base)
    print(f"\nW1 train step, {args.shots} shots, parameter shift; median ms (x router compiled)")
    print("| qubits | load | " + " | ".join(args.contenders) + " |")
    print("|---|---|" + "---|" * len(args.contenders))
    for n in args.qubits:
        for load in args.load:
            cells = []
            for contender in args.contenders:
                key = (n, load, contender)
                if key not in medians:
                    cells.append("-")
                    continue
                ms, ratio = statistics.median(medians[key]), statistics.median(ratios[key])
                cells.append(f"{ms:,.1f} ({ratio:.2f}x)")
            print(f"| {n} | {load} busy | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
