"""Which kernel technology for the batched engine: numpy, torch, JAX, numba or qsim.

Every candidate applies the same fused gate sequence of a W1 forward pass (RX
encoding, 4 layers of RY/RZ + CNOT ring; batch 32, every circuit with its own
matrices) to a batch of states. numpy, torch and JAX apply one array operation per
gate to the whole batch (JAX compiles the sequence once with ``jax.jit``); numba
(``qstore.batched``'s kernel) runs the whole sequence row by row on split real and
imaginary planes; qsim runs its own fused C++ kernels state by state. Results are
checked against numpy's; the compiled kernels run first because the BLAS and OpenMP
threads of the others keep spinning after each call. Reported: best milliseconds per
batch of 32 and the ratio to numpy.

    python benchmarks/bench_kernels.py --qubits 8 12 16 --dtype complex64
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import pennylane as qml

from qstore_pl.devices.batched.kernel import StateKernel, fuse
from qstore_pl.devices.batched.program import Program
from qstore_pl.devices.batched.qsim_kernel import QsimStateKernel

LAYERS, BATCH = 4, 32


def w1_gates(n: int, rng: np.random.Generator):
    x = rng.uniform(0, np.pi, (BATCH, n))
    w = rng.uniform(-np.pi, np.pi, (BATCH, LAYERS, n, 2))
    ops = [qml.RX(x[:, i], i) for i in range(n)]
    for layer in range(LAYERS):
        for i in range(n):
            ops += [qml.RY(w[:, layer, i, 0], i), qml.RZ(w[:, layer, i, 1], i)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
    bound = Program(tape).bind([tape])
    return [g.array() for g in bound.gates]


def _axis_moves(n: int, wire: int):
    return wire + 1  # axis of ``wire`` in a (B, 2, ..., 2) state


def run_numpy(states, gates, n):
    psi = states.reshape((BATCH,) + (2,) * n)
    for g in gates:
        if g.kind == "perm":
            psi = psi.reshape(BATCH, -1)[:, g.value].reshape(psi.shape)
            continue
        (w,) = g.wires
        axis = _axis_moves(n, w)
        moved = np.moveaxis(psi, axis, -1)
        if g.kind == "diag":
            d = g.value if g.value.ndim == 2 else g.value[None]
            moved = moved * d.reshape((BATCH,) + (1,) * (n - 1) + (2,)).astype(psi.dtype)
        else:
            m = g.value if g.value.ndim == 3 else g.value[None]
            shape = moved.shape
            moved = np.matmul(
                moved.reshape(BATCH, -1, 2), np.swapaxes(m, 1, 2).astype(psi.dtype)
            ).reshape(shape)
        psi = np.moveaxis(moved, -1, axis)
    return np.ascontiguousarray(psi).reshape(BATCH, -1)


def make_torch(gates, n, dtype):
    import torch

    cdtype = torch.complex64 if dtype == np.complex64 else torch.complex128
    prepared = []
    for g in gates:
        if g.kind == "perm":
            prepared.append(("perm", None, torch.as_tensor(g.value)))
        else:
            v = g.value if g.value.ndim == (2 if g.kind == "diag" else 3) else g.value[None]
            prepared.append((g.kind, g.wires[0], torch.as_tensor(v.astype(dtype))))

    def run(states):
        psi = torch.as_tensor(states).reshape((BATCH,) + (2,) * n)
        for kind, w, v in prepared:
            if kind == "perm":
                psi = psi.reshape(BATCH, -1)[:, v].reshape(psi.shape)
                continue
            moved = torch.movedim(psi, w + 1, -1)
            if kind == "diag":
                moved = moved * v.reshape((v.shape[0],) + (1,) * (n - 1) + (2,))
            else:
                shape = moved.shape
                moved = torch.matmul(moved.reshape(BATCH, -1, 2), v.transpose(1, 2)).reshape(shape)
            psi = torch.movedim(moved, -1, w + 1)
        return psi.reshape(BATCH, -1).numpy()

    return run, cdtype


def make_jax(gates, n, dtype):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    arrays = []
    for g in gates:
        if g.kind == "perm":
            arrays.append(("perm", None, jnp.asarray(g.value)))
        else:
            v = g.value if g.value.ndim == (2 if g.kind == "diag" else 3) else g.value[None]
            arrays.append((g.kind, g.wires[0], jnp.asarray(v.astype(dtype))))

    @jax.jit
    def run(states):
        psi = states.reshape((BATCH,) + (2,) * n)
        for kind, w, v in arrays:
            if kind == "perm":
                psi = psi.reshape(BATCH, -1)[:, v].reshape(psi.shape)
                continue
            moved = jnp.moveaxis(psi, w + 1, -1)
            if kind == "diag":
                moved = moved * v.reshape((v.shape[0],) + (1,) * (n - 1) + (2,))
            else:
                shape = moved.shape
                moved = jnp.matmul(moved.reshape(BATCH, -1, 2), jnp.swapaxes(v, 1, 2))
                moved = moved.reshape(shape)
            psi = jnp.moveaxis(moved, -1, w + 1)
        return psi.reshape(BATCH, -1)

    return lambda s: np.asarray(run(jnp.asarray(s)).block_until_ready())


def _apply(kernel, states, gates, n):
    return kernel.apply_all(states, gates, n)


def best_ms(fn, states, repeats: int) -> tuple[float, np.ndarray]:
    out = fn(states.copy())  # warm up / compile
    times = []
    for _ in range(repeats):
        s = states.copy()
        start = time.perf_counter()
        out = fn(s)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qubits", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument("--dtype", choices=("complex64", "complex128"), default="complex64")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype).type
    tol = 1e-4 if dtype == np.complex64 else 1e-10
    print(f"fused W1 forward sequence, batch {BATCH}, {args.dtype}; best of {args.repeats}")
    print(f"{'qubits':>6} {'candidate':<16}{'ms/batch':>12}{'vs numpy':>10}")
    for n in args.qubits:
        gates = fuse(w1_gates(n, np.random.default_rng(n)), compose_permutations=True)
        unfused_perms = fuse(w1_gates(n, np.random.default_rng(n)), compose_permutations=False)
        states = np.zeros((BATCH, 2**n), dtype=dtype)
        states[:, 0] = 1
        numba = StateKernel(dtype)
        torch_run, _ = make_torch(gates, n, dtype)
        # the compiled kernels first: BLAS, Eigen and OpenMP threads of numpy, JAX and
        # torch keep spinning after a call and slow whatever runs next on 2 cores
        candidates = {"numba (ours)": partial(_apply, numba, gates=gates, n=n)}
        if dtype == np.complex64:
            candidates["qsim (ours)"] = partial(_apply, QsimStateKernel(), gates=unfused_perms, n=n)
        candidates["numpy"] = partial(run_numpy, gates=gates, n=n)
        candidates["jax.jit"] = make_jax(gates, n, dtype)
        candidates["torch"] = torch_run
        measured = {name: best_ms(fn, states, args.repeats) for name, fn in candidates.items()}
        base, reference = measured["numpy"]
        for name, (ms, out) in measured.items():
            error = np.max(np.abs(np.asarray(out) - reference))
            flag = "" if error < tol else f"  MISMATCH {error:.1e}"
            print(f"{n:>6} {name:<16}{ms:>12.2f}{base / ms:>9.1f}x{flag}", flush=True)


if __name__ == "__main__":
    main()
