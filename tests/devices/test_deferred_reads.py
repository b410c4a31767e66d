"""The backward sweep's second-last reads, taken at its last step (``deferred_reads``):
the kernel's formulas against numpy's sums over explicit states, the plan's GF(2)
algebra, and whole VJPs against default.qubit and against the sweep that reads them in
place."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from test_batched_device import (
    DOUBLE,
    SINGLE,
    adjoint_config,
    flat,
    numpy_transitions,
    product_state,
    reference_vjp,
    run,
)

from qstore_pl.devices.batched import BatchedDevice, deferred_reads, jit_kernels
from qstore_pl.devices.batched.permutations import Affine


def random_affine(n: int, rng) -> Affine:
    """An invertible affine map of ``n`` index bits: random ``x_i ^= x_j`` steps (CNOTs)
    and a random constant (X gates)."""
    columns = [1 << q for q in range(n)]
    for _ in range(3 * n if n > 1 else 0):
        i, j = rng.choice(n, 2, replace=False)
        columns = [col ^ (((col >> j) & 1) << i) for col in columns]
    return Affine(int(rng.integers(1 << n)), tuple(columns))


def test_affine_tables_give_back_their_map_and_its_inverse():
    """An affine gather's tables give back the map's constant and columns, and
    ``_inverse_columns`` inverts it over GF(2): ``A⁻¹ (A x) = x`` for every ``x``."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 8):
        affine = random_affine(n, rng)
        const, columns = deferred_reads._affine_map(np.concatenate(affine.tables()), n)
        assert (const, tuple(columns)) == (affine.const, affine.cols)
        inverse = Affine(0, tuple(deferred_reads._inverse_columns(columns, n)))
        linear = Affine(0, affine.cols)
        assert [inverse(linear(x)) for x in range(1 << n)] == list(range(1 << n))


def apply_one_wire(state: np.ndarray, matrix: np.ndarray, bit: int) -> np.ndarray:
    """``matrix`` on bit ``bit`` (0: least significant) of ``state``."""
    view = state.reshape(-1, 2, 1 << bit)
    return np.einsum("ab,xby->xay", matrix, view).reshape(-1)


@pytest.mark.parametrize("dtype, tol", [(np.float64, DOUBLE), (np.float32, SINGLE)])
@pytest.mark.parametrize("n", [4, 7])
def test_deferred_transitions_equal_numpys_reads_before_the_permutation(n, dtype, tol):
    """``_deferred_transitions``: the transition matrices of ``λ₂`` against ``ψ₂ = V P f``
    (``V`` one-wire gates on some bits, ``P`` an affine permutation, ``f`` a product
    state), from ``λ₁ = P† V† λ₂`` and ``f`` alone, equal numpy's sums over each bit's
    index pairs of ``ψ₂`` and ``λ₂`` built out."""
    rng = np.random.default_rng(n)
    affine = random_affine(n, rng)
    index = affine.index()  # P|x> = |index[x]>
    factors = rng.normal(size=(n, 2)) + 1j * rng.normal(size=(n, 2))
    f = product_state(factors)
    gated = sorted(rng.choice(n, n - 1, replace=False))  # one bit has no gate
    gates = {
        b: np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))[0] for b in gated
    }
    psi2 = np.empty_like(f)
    psi2[index] = f
    for b, u in gates.items():
        psi2 = apply_one_wire(psi2, u, b)
    lam2 = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    lam1 = lam2
    for b, u in gates.items():  # the sweep undoes V, then P
        lam1 = apply_one_wire(lam1, u.conj().T, b)
    lam1 = lam1[index]

    # the last step as the sweep encodes it: V's undo matrices, then P's gather tables
    undo = [gates[b].conj().T for b in gated]
    tables = np.concatenate(affine.tables())
    kinds = np.array([jit_kernels.DENSE] * len(gated) + [jit_kernels.AFFINE], dtype=np.int64)
    counts = np.ones(len(kinds), dtype=np.int64)
    position_offsets = np.array([*range(len(gated) + 1), len(gated) + len(tables)], np.int64)
    positions = np.concatenate([np.array(gated, np.int64), tables])
    value_offsets = 4 * np.arange(len(kinds), dtype=np.int64)
    values = np.concatenate([m.ravel() for m in undo] + [np.zeros(4)])
    encoded = (kinds, counts, position_offsets, positions, value_offsets)
    ranges = np.array([[0, 0], [0, len(kinds)]], dtype=np.int64)
    read_bits = np.array(rng.permutation(n), dtype=np.int64)
    offsets = np.array([0, n, 2 * n], dtype=np.int64)  # then the last step's own reads
    bits = np.concatenate([read_bits, np.arange(n, dtype=np.int64)])
    plan = deferred_reads.plan_deferred(encoded, ranges, offsets, bits, n)
    assert plan is not None

    ar, ai = lam1.real.astype(dtype), lam1.imag.astype(dtype)
    fr, fi = factors.real.copy(), factors.imag.copy()
    last = np.empty((n, 2, 2), dtype=complex)
    by_high, by_low = jit_kernels._product_transitions(
        ar, ai, fr, fi, np.arange(n, dtype=np.int64), last, plan.low_keys, plan.high_keys
    )
    real, imag = values.real.astype(dtype), values.imag.astype(dtype)
    matrices = jit_kernels._one_wire_products(
        0, read_bits, 0, plan.undo_bits, counts, value_offsets, real, imag
    )
    out = np.full((n, 2, 2), np.nan, dtype=complex)
    jit_kernels._deferred_transitions(
        fr, fi, by_high, by_low, plan.products, plan.reads, matrices, out
    )
    want = numpy_transitions(lam2, psi2, read_bits)
    scale = np.abs(lam2).sum() * np.abs(psi2).max()
    np.testing.assert_allclose(out, want, atol=tol * scale, rtol=0)


def sweep_tape(n: int, structure: str, seed: int) -> qml.tape.QuantumScript:
    """An angle encoding and three layers of rotations and entanglers. The last step of
    the sweep undoes the second layer and the first entangler, which ``structure``
    varies: a ring of CNOTs (W1); a chain of CNOTs with X and SWAP (an affine map with
    a constant); a second layer on some wires only, with several gates on one wire and
    a fixed gate; CZs (no permutation: nothing is deferred)."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-np.pi, np.pi, (3, n, 2))
    ops = [qml.RX(x, w) for w, x in enumerate(rng.uniform(0, np.pi, n))]
    for layer in range(3):
        wires = range(0, n, 2) if structure == "partial" and layer == 1 else range(n)
        ops += [qml.RY(angles[layer, w, 0], w) for w in wires]
        ops += [qml.RZ(angles[layer, w, 1], w) for w in wires]
        if structure == "partial" and layer == 1:  # several gates on wire 1, a fixed one
            ops += [qml.RX(angles[layer, 1, 0], 1), qml.RZ(angles[layer, 1, 1], 1)]
            ops += [qml.RY(0.4, 1), qml.Hadamard(n - 1)]
        if structure == "cz":
            ops += [qml.CZ([w, (w + 1) % n]) for w in range(n)]
        elif structure == "chain":
            ops += [qml.CNOT([w, w + 1]) for w in range(n - 1)]
            ops += [qml.PauliX(1), qml.SWAP([0, n - 1])]
        else:
            ops += [qml.CNOT([w, (w + 1) % n]) for w in range(n)]
    observables = [qml.Z(0), qml.Z(n - 1), qml.Z(1)]
    if structure == "chain":  # not <Z> alone: the sweep gets an array of λ rows
        observables[-1] = qml.X(0) @ qml.Y(1)
    gate_params = sum(op.num_params for op in ops)
    return qml.tape.QuantumScript(
        ops, [qml.expval(o) for o in observables], trainable_params=list(range(n, gate_params))
    )


def spy_on_plans(monkeypatch) -> list:
    """The plans ``deferred_reads.plan_deferred`` makes from now on, in a list."""
    planned = []
    plan_deferred = deferred_reads.plan_deferred

    def spy(*args):
        planned.append(plan_deferred(*args))
        return planned[-1]

    monkeypatch.setattr(deferred_reads, "plan_deferred", spy)
    return planned


def vjps(tapes, dys, dtype):
    dev = BatchedDevice(wires=tapes[0].num_wires, c_dtype=dtype, kernel="jit")
    return dev.execute_and_compute_vjp(tapes, dys, adjoint_config(dev))


@pytest.mark.parametrize("structure", ["ring", "chain", "partial", "cz"])
@pytest.mark.parametrize("dtype, tol", [(np.complex128, DOUBLE), (np.complex64, SINGLE)])
@pytest.mark.parametrize("n", [4, 11])  # 11: the rows' low bits rotate in each step
def test_deferred_reads_give_default_qubits_vjps(n, structure, dtype, tol, monkeypatch):
    """VJPs whose second-last reads wait for the last step equal default.qubit's and
    the sweep's that reads them in place (``deferred_reads.ENABLED`` off); the plan
    defers them wherever the last step is one-wire gates and an affine permutation."""
    monkeypatch.setenv("QSTORE_THREADS", "2")
    planned = spy_on_plans(monkeypatch)
    tapes = [sweep_tape(n, structure, seed) for seed in range(3)]  # own angles per row
    dys = [tuple(np.random.default_rng(seed).normal(size=3)) for seed in range(3)]
    values, got = vjps(tapes, dys, dtype)
    assert [plan is not None for plan in planned] == [structure != "cz"]
    monkeypatch.setattr(deferred_reads, "ENABLED", False)
    _, in_place = vjps(tapes, dys, dtype)
    assert len(planned) == 1  # not asked again
    want = run(qml.device("default.qubit"), tapes)
    for tape, value, expected, dy, vjp, other in zip(tapes, values, want, dys, got, in_place):
        np.testing.assert_allclose(flat(value), flat(expected), atol=tol, rtol=0)
        reference = reference_vjp(tape, np.array(dy))
        np.testing.assert_allclose(np.asarray(vjp), reference, atol=tol * 10, rtol=0)
        np.testing.assert_allclose(np.asarray(vjp), np.asarray(other), atol=tol * 10, rtol=0)


@pytest.mark.parametrize("structure", ["ring", "chain"])
def test_rows_wider_than_a_cache_block_defer_their_reads_alike(structure, monkeypatch):
    """At 16 qubits (rows in blocks and tiles, single precision) the deferred reads give
    the VJPs of the sweep that reads in place."""
    monkeypatch.setenv("QSTORE_THREADS", "2")
    planned = spy_on_plans(monkeypatch)
    tapes = [sweep_tape(16, structure, seed) for seed in range(2)]
    dys = [tuple(np.random.default_rng(seed).normal(size=3)) for seed in range(2)]
    _, got = vjps(tapes, dys, np.complex64)
    assert len(planned) == 1 and planned[0] is not None
    monkeypatch.setattr(deferred_reads, "ENABLED", False)
    _, in_place = vjps(tapes, dys, np.complex64)
    for vjp, other in zip(got, in_place):
        np.testing.assert_allclose(np.asarray(vjp), np.asarray(other), atol=SINGLE * 10, rtol=0)


_KINDS = np.array([jit_kernels.DENSE, jit_kernels.AFFINE], dtype=np.int64)
_RANGES = np.array([[0, 0], [0, 2]], dtype=np.int64)
_OFFSETS = np.array([0, 2, 4], dtype=np.int64)
_KEYS = np.zeros((1, 2), dtype=np.int64)
_PRODUCTS = np.array([[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.int64)
_READS = np.array([[1, 2, 2, 0], [1, 2, 2, 1]], dtype=np.int64)
_UNDO = np.array([1], dtype=np.int64)  # the one-wire gate before the permutation
_FITS = (_KEYS, _KEYS, _PRODUCTS, _READS, _UNDO)


def _but(index: int, array: np.ndarray) -> tuple:
    return tuple(array if i == index else a for i, a in enumerate(_FITS))


@pytest.mark.parametrize(
    "deferred, start, bit_offsets, problem",
    [
        (_FITS, False, _OFFSETS, "product state"),
        (_but(3, _READS[:1]), True, _OFFSETS, "one read per wire"),
        (_but(3, _READS + 5), True, _OFFSETS, "out of range"),
        (_but(2, _PRODUCTS + np.array([0, 3, 0, 0])), True, _OFFSETS, "out of range"),
        (_FITS, True, np.array([0, 2, 2]), "must read"),
        (_but(4, np.zeros(2, dtype=np.int64)), True, _OFFSETS, "a bit for each gate"),
        (_but(0, _KEYS + 1), True, _OFFSETS, "f itself and its halves come first"),
        (_but(2, _PRODUCTS[::-1]), True, _OFFSETS, "f itself and its halves come first"),
    ],
)
def test_deferred_reads_that_do_not_fit_the_sweep_are_refused(
    deferred, start, bit_offsets, problem
):
    """The kernel checks no bounds: arrays that do not fit the sweep raise where they
    are checked (once, when the plan makes them), and ones that fit pass."""
    checked = jit_kernels.checked_deferred(_FITS, True, _RANGES, _OFFSETS, _KINDS)
    assert all(np.array_equal(a, b) for a, b in zip(checked, _FITS, strict=True))
    with pytest.raises(ValueError, match=f"deferred reads do not fit the sweep: .*{problem}"):
        jit_kernels.checked_deferred(deferred, start, _RANGES, bit_offsets, _KINDS)
