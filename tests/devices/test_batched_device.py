"""Tests of the ``qstore.batched`` engine itself, through its device API.

The router-level comparison (every interface, broadcasting, probs, state) runs the
``batched`` case of ``test_router_correctness.py``; PennyLane's conformance suite runs
from ``scripts/conformance.py``. Here: the kernels against each other and against
default.qubit, device VJPs and Jacobians of grouped batches, and bad input.

Tolerances. complex128 kernels are exact up to rounding (1e-16 per operation; these
circuits have < 100 gates), so 1e-10. complex64 rounds every amplitude to float32
(6e-8 relative per gate); after ~80 gates, sums of up to 8 expectation values stay
below 1e-5, which is still far below any real bug (>= 1e-3).
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
from pennylane.devices import ExecutionConfig
from pennylane.exceptions import DeviceError

from qstore_pl.devices.batched import BatchedDevice
from qstore_pl.devices.batched.program import Program
from qstore_pl.exceptions import InvalidParameterError

DOUBLE = 1e-10
SINGLE = 1e-5

_ONE = ("RX", "RY", "RZ", "PhaseShift")
_TWO = ("CRX", "CRY", "CRZ", "IsingXX", "IsingYY", "IsingZZ", "ControlledPhaseShift")
_FIXED = ("CNOT", "CZ", "Hadamard", "S", "T", "SWAP", "Toffoli")


def layered_tape(n: int, seed: int, batch: int | None = None) -> qml.tape.QuantumScript:
    """An encoding layer (broadcast when ``batch``), then random gates of every family."""
    rng = np.random.default_rng(seed)
    shape = (batch, n) if batch else (n,)
    inputs = rng.uniform(-np.pi, np.pi, shape)
    ops = [qml.RY(inputs[..., w], w) for w in range(n)]
    for _ in range(6 * n):
        family = rng.choice(["one", "two", "fixed"])
        if family == "one":
            name = rng.choice(_ONE)
            ops.append(getattr(qml, name)(rng.uniform(-np.pi, np.pi), int(rng.integers(n))))
        elif family == "two":
            name = rng.choice(_TWO)
            wires = [int(w) for w in rng.choice(n, 2, replace=False)]
            ops.append(getattr(qml, name)(rng.uniform(-np.pi, np.pi), wires))
        else:
            name = rng.choice(_FIXED)
            size = {"CNOT": 2, "CZ": 2, "SWAP": 2, "Toffoli": 3}.get(name, 1)
            wires = [int(w) for w in rng.choice(n, size, replace=False)]
            ops.append(getattr(qml, name)(wires=wires))
    ops.append(qml.Rot(*rng.uniform(-np.pi, np.pi, 3), wires=0))
    measurements = [qml.expval(qml.Z(w)) for w in range(n)]
    measurements += [
        qml.expval(qml.X(0) @ qml.Y(n - 1)),
        qml.expval(0.5 * qml.Z(1) + 1.5 * qml.X(0) @ qml.X(1)),
        qml.probs(wires=[n - 1, 0]),
    ]
    gate_params = sum(op.num_params for op in ops)  # observable coefficients are constants
    return qml.tape.QuantumScript(ops, measurements, trainable_params=list(range(gate_params)))


def run(dev, tapes, config=None):
    config = dev.setup_execution_config(config)
    program = dev.preprocess_transforms(config)
    processed, post = program(tapes)
    return post(dev.execute(processed, config))


def flat(result) -> np.ndarray:
    return np.concatenate([np.ravel(r) for r in result])


@pytest.mark.parametrize(
    "kwargs, tol",
    [
        ({}, DOUBLE),
        ({"c_dtype": np.complex64, "kernel": "jit"}, SINGLE),
        ({"c_dtype": np.complex64, "kernel": "qsim"}, SINGLE),
    ],
    ids=["jit128", "jit64", "qsim64"],
)
@pytest.mark.parametrize("n", [3, 6, 9])
def test_kernels_match_default_qubit_on_broadcast_batches(kwargs, tol, n):
    tapes = [layered_tape(n, seed, batch=5) for seed in range(3)]
    dev = BatchedDevice(wires=n, **kwargs)
    expected = run(qml.device("default.qubit"), tapes)
    for got, want in zip(run(dev, tapes), expected):
        np.testing.assert_allclose(flat(got), flat(want), atol=tol, rtol=0)


def test_same_structure_tapes_run_as_one_group_with_their_own_parameters():
    """Tapes that differ only in parameters share one program and one simulation."""
    base = layered_tape(4, seed=1)
    params = np.array(base.get_parameters(operations_only=True))
    indices = list(range(len(params)))  # operations' parameters come first
    tapes = [base.bind_new_parameters(params * s, indices) for s in (1.0, 0.5, -1.3)]
    dev = BatchedDevice(wires=4)
    results = run(dev, tapes)
    assert len(dev._programs) == 1
    ((indices, _, states),) = dev._simulate(tapes)  # one group, one simulation
    assert indices == [0, 1, 2] and states.shape == (3, 2**4)
    expected = run(qml.device("default.qubit"), tapes)
    for got, want in zip(results, expected):
        np.testing.assert_allclose(flat(got), flat(want), atol=DOUBLE, rtol=0)
    assert not np.allclose(flat(results[0]), flat(results[1]))


def reference_vjp(tape, cotangent: np.ndarray) -> np.ndarray:
    """``dy · J`` from default.qubit's backprop Jacobian (autograd)."""
    params = qml.numpy.array(tape.get_parameters(), requires_grad=True)

    def cost(p):
        bound = tape.bind_new_parameters(p, tape.trainable_params)
        (res,) = qml.execute([bound], qml.device("default.qubit"), diff_method="backprop")
        res = res if isinstance(res, tuple) else (res,)
        return qml.math.concatenate([qml.math.reshape(r, (-1,)) for r in res])

    jac = qml.jacobian(cost)(params)
    return cotangent @ jac


@pytest.mark.parametrize("kwargs, tol", [({}, DOUBLE), ({"c_dtype": np.complex64}, SINGLE)])
def test_vjp_of_a_grouped_batch_matches_backprop(kwargs, tol):
    """One backward sweep gives every tape's VJP (expvals, sums, probs together)."""
    n = 4
    tapes = [layered_tape(n, seed) for seed in (3, 3)]
    # trainable interface tensors, as a QNode passes them: preprocessing then
    # decomposes gates without a generator (Rot) into ones with one
    for i, shift in enumerate((0.0, 0.3)):
        params = np.array(tapes[i].get_parameters(operations_only=True)) + shift
        tensors = [qml.numpy.array(p, requires_grad=True) for p in params]
        tapes[i] = tapes[i].bind_new_parameters(tensors, list(range(len(params))))
    dev = BatchedDevice(wires=n, **kwargs)
    config = dev.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
    assert config.use_device_jacobian_product
    processed, _ = dev.preprocess_transforms(config)(tapes)
    for tape in processed:  # as PennyLane's ML boundary does: trainable = requires_grad
        tape.trainable_params = qml.math.get_trainable_indices(tape.get_parameters(False))
    rng = np.random.default_rng(0)
    sizes = [1] * (n + 2) + [4]
    cotangents = [
        tuple(rng.normal(size=s) if s > 1 else rng.normal() for s in sizes) for _ in tapes
    ]
    _, vjps = dev.execute_and_compute_vjp(processed, cotangents, config)
    for tape, dy, vjp in zip(processed, cotangents, vjps):
        want = reference_vjp(tape, np.concatenate([np.ravel(d) for d in dy]))
        np.testing.assert_allclose(np.asarray(vjp), want, atol=tol * 10, rtol=0)


def test_jacobian_of_broadcast_tape_matches_backprop():
    """The TensorFlow path asks for Jacobians; rows of a broadcast tape stay separate."""
    n = 3
    ops = [qml.RX(np.array([0.1, 0.7]), 0), qml.RY(0.4, 1), qml.CNOT([0, 1]), qml.CRZ(1.1, [1, 2])]
    ops += [qml.RY(-0.5, 2)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(2)), qml.expval(qml.X(0) @ qml.Z(1))],
                                  trainable_params=[1, 2, 3])  # fmt: skip
    dev = BatchedDevice(wires=n)
    config = ExecutionConfig(gradient_method="adjoint", use_device_jacobian_product=False,
                             interface="tf")  # fmt: skip
    config = dev.setup_execution_config(config)
    assert not config.use_device_jacobian_product
    processed, _ = dev.preprocess_transforms(config)([tape])
    jacs = dev.compute_derivatives(processed, config)
    results = run(dev, processed)
    expected = run(qml.device("default.qubit"), processed)
    for got, want in zip(results, expected):
        np.testing.assert_allclose(flat(got), flat(want), atol=DOUBLE, rtol=0)
    assert len(processed) == 2, "Jacobians need broadcast_expand: one tape per row"
    for row, jac in zip(processed, jacs):
        for m in range(2):  # jac[m][p]: measurement m, trainable parameter p
            got = np.array([float(j) for j in jac[m]])
            np.testing.assert_allclose(got, reference_vjp(row, np.eye(2)[m]), atol=DOUBLE)


def test_finite_shots_sample_from_the_final_states():
    n = 3
    tape = qml.tape.QuantumScript(
        [qml.RY(np.array([0.3, 2.0]), 0), qml.CNOT([0, 1]), qml.RX(0.8, 2)],
        [qml.expval(qml.Z(1)), qml.counts(wires=[0, 1]), qml.sample(qml.Z(2))],
        shots=20_000,
    )
    dev = BatchedDevice(wires=n, seed=11)
    expval, counts, samples = run(dev, [tape])[0]
    exact = np.cos([0.3, 2.0])
    np.testing.assert_allclose(expval, exact, atol=5 / np.sqrt(20_000))
    for row, c in enumerate(counts):
        assert set(c) <= {"00", "11"}, "CNOT copies wire 0 onto wire 1: only 00 and 11"
        assert abs(c.get("00", 0) / 20_000 - np.cos(0.15 if row == 0 else 1.0) ** 2) < 0.02
    assert np.asarray(samples).shape == (2, 20_000)
    assert abs(np.mean(samples) - np.cos(0.8)) < 5 / np.sqrt(40_000)


def test_trainable_observable_coefficients_are_refused_not_ignored():
    tape = qml.tape.QuantumScript([qml.RX(0.3, 0)], [qml.expval(0.5 * qml.Z(0))])
    dev = BatchedDevice(wires=1)
    config = dev.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
    with pytest.raises(DeviceError, match="belongs to a measured observable"):
        dev.execute_and_compute_vjp([tape], [1.0], config)


def test_nan_parameter_names_the_gate():
    tape = qml.tape.QuantumScript([qml.RX(np.nan, 0), qml.CNOT([0, 1])], [qml.expval(qml.Z(1))])
    with pytest.raises(InvalidParameterError, match=r"RX on wires \[0\].*not finite"):
        run(BatchedDevice(wires=2), [tape])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"c_dtype": np.float64}, "c_dtype must be complex64 or complex128"),
        ({"kernel": "gpu"}, "kernel must be 'auto', 'jit' or 'qsim'"),
        ({"kernel": "qsim"}, "pass c_dtype=np.complex64"),
    ],
)
def test_invalid_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchedDevice(wires=2, **kwargs)


def test_wide_gates_are_decomposed_and_non_generator_gates_are_not_adjoint_differentiated():
    """A 5-wire MultiControlledX decomposes; a trainable Rot becomes RZ/RY gates."""
    n = 5
    ops = [qml.RY(0.4, w) for w in range(n)] + [qml.MultiControlledX(wires=range(n))]
    ops += [qml.Rot(*qml.numpy.array([0.1, 0.2, 0.3], requires_grad=True), wires=4)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(4))])
    dev = BatchedDevice(wires=n)
    np.testing.assert_allclose(
        run(dev, [tape])[0], run(qml.device("default.qubit"), [tape])[0], atol=DOUBLE
    )
    config = dev.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
    processed, _ = dev.preprocess_transforms(config)([tape])
    names = {op.name for op in processed[0].operations}
    assert "Rot" not in names and "MultiControlledX" not in names


def small_tape(theta, inputs=(0.2, 0.9), wires=(0, 1, 2)) -> qml.tape.QuantumScript:
    """Three wires: a (broadcast) encoding, trainable RY/RZ/CRX, two expvals."""
    a, b, c = wires
    ops = [qml.RX(np.array(inputs) if np.ndim(inputs) else inputs, a), qml.RY(0.4, b)]
    ops += [qml.CNOT([a, b]), qml.RZ(theta, b), qml.RY(0.3, c), qml.CRX(0.5, [b, c])]
    ops += [qml.Hadamard(a), qml.IsingZZ(-0.8, [c, a])]
    measurements = [qml.expval(qml.Z(b)), qml.expval(qml.Y(c) @ qml.X(a))]
    return qml.tape.QuantumScript(ops, measurements, trainable_params=[1, 2, 3, 4, 5])


def adjoint_config(dev):
    config = dev.setup_execution_config(ExecutionConfig(gradient_method="adjoint"))
    assert config.use_device_jacobian_product
    return config


def test_vjp_reuses_the_forward_states_only_for_equal_parameters():
    """A fresh copy of the executed tape reuses its states; one changed angle does not."""
    dev = BatchedDevice(wires=3)
    config = adjoint_config(dev)
    dev.execute([small_tape(0.7)], config)
    assert dev._simulate([small_tape(0.7)]) is dev._executed[1]
    assert dev._simulate([small_tape(0.7, inputs=(0.2, 0.9000001))]) is not dev._executed[1]
    assert dev._simulate([small_tape(0.7, inputs=(0.2, 0.9, 0.1))]) is not dev._executed[1]
    cotangent = (np.array([1.0, -0.5]), np.array([0.3, 2.0]))
    for changed in (0.7, 0.8):  # 0.8: the states of 0.7 would give a wrong VJP
        dev.execute([small_tape(0.7)], config)
        (vjp,) = dev.compute_vjp([small_tape(changed)], [cotangent], config)
        want = reference_vjp(small_tape(changed), np.concatenate(cotangent))
        np.testing.assert_allclose(np.asarray(vjp), want, atol=DOUBLE)


def test_tapes_on_other_wire_labels_match_default_qubit():
    """Wires that are not 0 .. k-1 are mapped (the reuse check still works on them)."""
    dev = BatchedDevice(wires=["b", "a", 5])
    tapes = [small_tape(0.7, wires=("b", "a", 5)), small_tape(0.7, wires=(5, "b", "a"))]
    expected = run(qml.device("default.qubit"), tapes)
    for got, want in zip(run(dev, tapes), expected):
        np.testing.assert_allclose(flat(got), flat(want), atol=DOUBLE, rtol=0)
    config = adjoint_config(dev)
    cotangent = (np.array([1.0, -0.5]), np.array([0.3, 2.0]))
    dev.execute(tapes, config)
    vjps = dev.compute_vjp([small_tape(0.7, wires=t.wires[:3]) for t in tapes], [cotangent] * 2,
                           config)  # fmt: skip
    for tape, vjp in zip(tapes, vjps):
        want = reference_vjp(tape, np.concatenate(cotangent))
        np.testing.assert_allclose(np.asarray(vjp), want, atol=DOUBLE)


def test_a_group_of_broadcast_and_plain_tapes_keeps_each_tapes_rows():
    """Broadcast sizes 3, none and 2 in one group: results and VJPs per tape."""
    tapes = [
        small_tape(0.7, inputs=(0.2, 0.9, -1.1)),
        small_tape(-0.4, inputs=1.3),
        small_tape(1.9, inputs=(2.0, 0.1)),
    ]
    dev = BatchedDevice(wires=3)
    ((indices, bound, states),) = dev._simulate(tapes)
    assert indices == [0, 1, 2] and states.shape == (6, 8) and bound.batch_sizes == [3, None, 2]
    expected = run(qml.device("default.qubit"), tapes)
    for got, want in zip(run(dev, tapes), expected):
        np.testing.assert_allclose(flat(got), flat(want), atol=DOUBLE, rtol=0)
    config = adjoint_config(dev)
    rng = np.random.default_rng(5)
    cotangents = [tuple(rng.normal(size=t.batch_size or ()) for _ in range(2)) for t in tapes]
    _, vjps = dev.execute_and_compute_vjp(tapes, cotangents, config)
    for tape, dy, vjp in zip(tapes, cotangents, vjps):
        want = reference_vjp(tape, np.concatenate([np.ravel(d) for d in dy]))
        np.testing.assert_allclose(np.asarray(vjp), want, atol=DOUBLE)


def test_mismatched_broadcast_sizes_are_refused():
    ops = [qml.RX(np.array([0.1, 0.2]), 0), qml.RY(np.array([0.1, 0.2, 0.3]), 1)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
    with pytest.raises(ValueError, match="batch sizes"):
        BatchedDevice(wires=2).execute([tape])


def test_a_run_of_permutations_is_one_gather_and_affine_runs_build_no_index_per_gate():
    """Consecutive permutations compose into one gather. CNOT, SWAP and X are affine
    maps of the index bits: their run builds its map from two small tables, with no
    index per gate (a ring of 20 CNOTs built 20 indices of 8 MB), and the kernel
    gathers from the tables. A Toffoli is not affine: its run composes indices."""
    from qstore_pl.devices.batched import jit_kernels
    from qstore_pl.devices.batched.permutations import Affine, chain

    n = 7
    rng = np.random.default_rng(4)
    affine_ops = [qml.CNOT([w, (w + 1) % n]) for w in range(n)]
    affine_ops += [qml.SWAP([1, 5]), qml.PauliX(2), qml.CNOT([6, 0])]
    rng.shuffle(affine_ops)
    for ops, affine in ((affine_ops, True), ([*affine_ops[:4], qml.Toffoli([0, 3, 5])], False)):
        program = Program(qml.tape.QuantumScript(ops, [qml.probs(wires=range(n))]))
        gathers = [t.fixed_perm for t in program.gates]
        assert all(
            (g.affine is not None) == (t.name != "Toffoli") for g, t in zip(gathers, program.gates)
        )
        composed = chain(gathers)
        assert isinstance(composed, Affine) == affine
        assert ("index" in gathers[0].__dict__) != affine  # no index per gate when affine
        index = composed.index() if affine else composed
        matrix = np.eye(2**n)
        for op in ops:
            matrix = qml.matrix(op, wire_order=range(n)) @ matrix
        state = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
        np.testing.assert_allclose(state[index], matrix @ state, atol=DOUBLE, rtol=0)
        if affine:  # the kernel's gather from the two tables
            planes = [np.ascontiguousarray(part) for part in (state.real, state.imag)]
            out = [np.empty_like(part) for part in planes]
            jit_kernels._affine_gather(*planes, *out, np.concatenate(composed.tables()))
            np.testing.assert_allclose(out[0] + 1j * out[1], matrix @ state, atol=DOUBLE, rtol=0)


def test_a_rotated_row_rotates_back_before_its_next_permutation():
    """From ROTATION_MIN_WIRES wires (to ROTATION_MAX_WIRES) a layer's one-wire gates
    on the lowest bits run after a rotation of the row's bits; the row rotates back
    before the ring of CNOTs gathers, which then reads it in logical order (a gather
    undoing the rotation itself read from 8 distant streams, 5x slower)."""
    from qstore_pl.devices.batched import jit_kernels, plan

    n = plan.ROTATION_MIN_WIRES
    k = plan.ROTATION_BITS
    weights = np.random.default_rng(2).uniform(-np.pi, np.pi, (2, n))
    ops = []
    for layer in weights:
        ops += [qml.RY(layer[w], w) for w in range(n)]
        ops += [qml.CNOT([w, (w + 1) % n]) for w in range(n)]
    tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
    program = Program(tape)
    lay = plan.layout(program.bind([tape]))
    kinds, _, offsets, positions, _ = plan.forward_plan(lay).encoded
    layer_kinds = [jit_kernels.DENSE] * (n - k) + [jit_kernels.ROTATION]
    layer_kinds += [jit_kernels.DENSE] * k + [jit_kernels.ROTATION, jit_kernels.AFFINE]
    assert list(kinds) == layer_kinds * 2
    rotations = [positions[offsets[g]] for g in np.flatnonzero(kinds == jit_kernels.ROTATION)]
    assert rotations == [k, n - k] * 2
    dev = BatchedDevice(wires=n, kernel="jit")
    want = run(qml.device("default.qubit"), [tape])
    np.testing.assert_allclose(flat(run(dev, [tape])), flat(want), atol=DOUBLE, rtol=0)


@pytest.mark.parametrize("kwargs, tol", [({}, DOUBLE), ({"c_dtype": np.complex64}, SINGLE)])
def test_compiled_plans_match_gate_by_gate_application(kwargs, tol):
    """The plans compiled per structure give the states and VJPs of applying each gate.

    Broadcast and shared parameters, multi-tape groups, fixed and generic gates (Rot),
    and a backward sweep through every gate family.
    """
    n = 4
    cases = [[layered_tape(n, 7, batch=3)], [layered_tape(n, 8)], [layered_tape(n, 9)] * 2]
    for tapes in cases:
        dev = BatchedDevice(wires=n, **kwargs)
        config = adjoint_config(dev)
        processed, _ = dev.preprocess_transforms(config)(tapes)
        for tape in processed:  # every gate parameter but Rot's (no single generator)
            gate_params = len(tape.get_parameters(trainable_only=False, operations_only=True))
            tape.trainable_params = list(range(gate_params - 3))
        rng = np.random.default_rng(1)
        sizes = [1] * (n + 2) + [4]
        cotangents = []
        for tape in processed:
            rows = (tape.batch_size,) if tape.batch_size else ()
            cotangents.append(tuple(rng.normal(size=rows + ((s,) if s > 1 else ())) for s in sizes))
        ((_, _, planned),) = dev._simulate(processed)
        planned_results, planned_vjps = dev.execute_and_compute_vjp(processed, cotangents, config)
        dev._jit.planned = False  # the gate-by-gate path
        dev._executed = None
        ((_, _, reference),) = dev._simulate(processed)
        results, vjps = dev.execute_and_compute_vjp(processed, cotangents, config)
        np.testing.assert_allclose(planned, reference, atol=tol, rtol=0)
        for got, want in zip(planned_vjps, vjps):
            np.testing.assert_allclose(flat(got), flat(want), atol=tol * 10, rtol=0)
        for got, want in zip(planned_results, results):
            np.testing.assert_allclose(flat(got), flat(want), atol=tol, rtol=0)


def test_equal_permutations_share_one_read_only_gather_index():
    """A ring of CNOTs repeated in layers builds each gather index once (first calls at
    16-20 qubits spent most of their setup on them); a shared index is read-only and
    still applies the right permutation."""
    from qstore_pl.devices.batched.permutations import full_permutation
    from qstore_pl.devices.batched.program import Program

    ops = [qml.CNOT([0, 1]), qml.CNOT([1, 2]), qml.CNOT([0, 1]), qml.CNOT([2, 0])]
    program = Program(qml.tape.QuantumScript(ops, [qml.state()]))
    cnot01, cnot12, again01, cnot20 = (np.asarray(t.fixed_perm) for t in program.gates)
    assert again01 is cnot01 and cnot12 is not cnot01 and cnot20 is not cnot01
    assert np.asarray(program.gates[0].inverse_perm.value) is cnot01  # CNOT is self-inverse
    assert not cnot01.flags.writeable
    # |j> -> |perm[j]>: the gather index is the inverse of the matrix's column map
    matrix = np.abs(qml.matrix(qml.CNOT([2, 0]), wire_order=[0, 1, 2]))
    assert np.array_equal(cnot20, np.argsort(np.argmax(matrix, axis=0)))
    assert np.array_equal(cnot20, full_permutation(np.array([0, 1, 3, 2]), (2, 0), 3))
    # three wires, scattered and out of order, on five qubits
    local = np.argmax(np.abs(qml.matrix(qml.Toffoli([0, 1, 2]))), axis=0)  # |j> -> |local[j]>
    matrix = np.abs(qml.matrix(qml.Toffoli([3, 0, 4]), wire_order=range(5)))
    gather = full_permutation(local, (3, 0, 4), 5)
    assert np.array_equal(gather, np.argsort(np.argmax(matrix, axis=0)))


@pytest.mark.parametrize("kwargs, tol", [({}, DOUBLE), ({"c_dtype": np.complex64}, SINGLE)])
def test_wide_rows_rotate_their_bits_and_keep_values_and_gradients(kwargs, tol):
    """From ``ROTATION_MIN_WIRES`` wires (to ``ROTATION_MAX_WIRES``) the plans rotate
    rows so that no one-wire gate runs on the lowest bits, and the adjoint sweep reads
    one-wire derivatives through later one-wire gates: values, VJPs and Jacobians still
    equal default.qubit's."""
    from qstore_pl.devices.batched import jit_kernels
    from qstore_pl.devices.batched.plan import ROTATION_MIN_WIRES, SequencePlan

    n = ROTATION_MIN_WIRES + 1
    tape = layered_tape(n, seed=5)
    dev = BatchedDevice(wires=n, kernel="jit", **kwargs)
    config = adjoint_config(dev)
    processed, _ = dev.preprocess_transforms(config)([tape])
    for t in processed:  # every gate parameter but Rot's (no single generator)
        gate_params = len(t.get_parameters(trainable_only=False, operations_only=True))
        t.trainable_params = list(range(gate_params - 3))
    ((_, bound, _),) = dev._simulate(processed)
    layouts = bound.program.__dict__["_layouts"].values()
    plans = [p[0] if isinstance(p, tuple) else p for lay in layouts for p in lay._plans.values()]
    kinds = np.concatenate(
        [s[0] for plan in plans if isinstance(plan, SequencePlan) for s in plan.structure]
    )
    assert jit_kernels.ROTATION in kinds

    results = run(dev, processed)
    expected = run(qml.device("default.qubit"), processed)
    for got, want in zip(results, expected):
        np.testing.assert_allclose(flat(got), flat(want), atol=tol, rtol=0)
    rng = np.random.default_rng(2)
    sizes = [1] * (n + 2) + [4]
    dy = tuple(rng.normal(size=s) if s > 1 else rng.normal() for s in sizes)
    _, (vjp,) = dev.execute_and_compute_vjp(processed, [dy], config)
    want = reference_vjp(processed[0], np.concatenate([np.ravel(d) for d in dy]))
    np.testing.assert_allclose(np.asarray(vjp), want, atol=tol * 10, rtol=0)

    jac_config = dev.setup_execution_config(
        ExecutionConfig(gradient_method="adjoint", use_device_jacobian_product=False)
    )
    (jac,) = dev.compute_derivatives(processed, jac_config)
    for m in (0, n - 1, n):  # <Z_0>, <Z_{n-1}>, <X_0 Y_{n-1}>: one adjoint state each
        got = np.array([float(j) for j in jac[m]])
        basis = np.zeros(sum(sizes))
        basis[m] = 1.0
        want = reference_vjp(processed[0], basis)
        np.testing.assert_allclose(got, want, atol=tol * 10, rtol=0)


@pytest.mark.parametrize("kwargs, tol", [({}, DOUBLE), ({"c_dtype": np.complex64}, SINGLE)])
def test_rows_wider_than_a_cache_block_keep_values_and_gradients(kwargs, tol):
    """Rows of more than ``_CACHE_BLOCK`` amplitudes take runs of one-wire gates and
    read the adjoint sweep's off-diagonal entries block by block and tile by tile (bits
    15 and 16 cross blocks here): values and a VJP still equal default.qubit's."""
    from qstore_pl.devices.batched import jit_kernels

    n, batch = 17, 2
    assert 2**n >= 4 * jit_kernels._CACHE_BLOCK  # two bits across blocks
    rng = np.random.default_rng(7)
    inputs = rng.uniform(-np.pi, np.pi, (batch, n))
    weights = rng.uniform(-np.pi, np.pi, 3 * n)
    observables = [qml.Z(0), qml.Z(n - 1), qml.X(3) @ qml.Y(n - 2)]

    def circuit(x, w):
        ops = [qml.RY(x[..., i], i) for i in range(n)]
        ops += [qml.RY(w[i], i) for i in range(n)]
        ops += [qml.RZ(w[n + i], i) for i in range(n)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
        ops += [qml.RX(w[2 * n + i], i) for i in range(n)]
        measurements = [qml.expval(o) for o in observables]
        return qml.tape.QuantumScript(ops, measurements, trainable_params=list(range(n, 4 * n)))

    dev = BatchedDevice(wires=n, kernel="jit", **kwargs)
    dy = tuple(rng.normal(size=batch) for _ in observables)
    values, (vjp,) = dev.execute_and_compute_vjp(
        [circuit(inputs, weights)], [dy], adjoint_config(dev)
    )

    # default.qubit, one row at a time (its broadcast backprop at 17 wires needs GBs)
    def cost(w):
        rows = [circuit(x, w) for x in inputs]
        results = qml.execute(rows, qml.device("default.qubit"), diff_method="backprop")
        return sum(dy[m][r] * results[r][m] for r in range(batch) for m in range(len(dy)))

    want = qml.execute([circuit(x, weights) for x in inputs], qml.device("default.qubit"))
    np.testing.assert_allclose(np.stack(values[0]), np.array(want).T, atol=tol, rtol=0)
    expected = qml.grad(cost)(qml.numpy.array(weights, requires_grad=True))
    np.testing.assert_allclose(np.asarray(vjp), expected, atol=tol * 100, rtol=0)


def test_gates_on_the_lowest_bits_of_wide_rows_run_inside_the_block_sweep():
    """Rows wider than ``ROTATION_MAX_WIRES`` wires are not rotated: one-wire gates on
    the lowest bits run inside the block sweep (:func:`jit_kernels._low_gates`), alone or
    in a run. The kernel equals one pass per gate, and a circuit's values and VJP equal
    default.qubit's."""
    from qstore_pl.devices.batched import jit_kernels, plan

    rng = np.random.default_rng(11)
    size = 4 * jit_kernels._CACHE_BLOCK
    re, im = rng.normal(size=(2, size))
    matrices = [np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))[0]]
    matrices += [np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))[0]]
    matrices += [np.diag(np.exp(1j * rng.normal(size=2))) for _ in range(3)]
    bits = np.array([0, 2, 1, 0, 16], dtype=np.int64)  # bit 0 twice, in order
    real = np.concatenate([m.real.ravel() for m in matrices])
    imag = np.concatenate([m.imag.ravel() for m in matrices])
    offsets = np.arange(len(bits) + 1, dtype=np.int64)
    counts = np.ones(len(bits), dtype=np.int64)
    values = 4 * np.arange(len(bits), dtype=np.int64)
    got_re, got_im = re.copy(), im.copy()
    jit_kernels._one_wire_run(
        got_re, got_im, 0, 0, len(bits), counts, offsets, bits, values, real, imag
    )
    want_re, want_im = re.copy(), im.copy()
    for g, bit in enumerate(bits):
        jit_kernels._one_wire(want_re, want_im, real, imag, 4 * g, bit)
    np.testing.assert_allclose(got_re, want_re, atol=1e-12, rtol=0)
    np.testing.assert_allclose(got_im, want_im, atol=1e-12, rtol=0)

    n, batch = plan.ROTATION_MAX_WIRES + 2, 2
    observables = [qml.Z(n - 1), qml.X(n - 2), qml.Y(0) @ qml.Z(n - 3)]

    def circuit(w):  # w: (2n + 1,) for one circuit, or (batch, 2n + 1)
        ops = [qml.RY(w[..., i], i) for i in range(n)]
        ops += [qml.CNOT([i, i + 1]) for i in range(n - 1)]
        ops += [qml.RX(w[..., 2 * n], n - 1)]  # alone on bit 0, between permutations
        ops += [qml.CNOT([0, n - 1])]
        ops += [qml.RZ(w[..., n + i], i) for i in range(n)]
        ops += [qml.RY(w[..., n + i], i) for i in (n - 1, n - 2)]
        measurements = [qml.expval(o) for o in observables]
        return qml.tape.QuantumScript(ops, measurements, trainable_params=list(range(n)))

    weights = rng.uniform(-np.pi, np.pi, (batch, 2 * n + 1))
    lay = plan.layout(Program(circuit(weights)).bind([circuit(weights)]))
    assert jit_kernels.ROTATION not in plan.forward_plan(lay).encoded[0]

    dev = BatchedDevice(wires=n, kernel="jit")
    dy = tuple(rng.normal(size=batch) for _ in observables)
    values, (vjp,) = dev.execute_and_compute_vjp([circuit(weights)], [dy], adjoint_config(dev))
    want = qml.execute([circuit(w) for w in weights], qml.device("default.qubit"))
    np.testing.assert_allclose(np.stack(values[0]), np.array(want).T, atol=DOUBLE, rtol=0)

    def cost(first):  # the first n parameters of each circuit
        rows = [circuit(qml.math.concatenate([first[r], weights[r, n:]])) for r in range(batch)]
        results = qml.execute(rows, qml.device("default.qubit"), diff_method="backprop")
        return sum(dy[m][r] * results[r][m] for r in range(batch) for m in range(len(dy)))

    expected = qml.grad(cost)(qml.numpy.array(weights[:, :n], requires_grad=True))
    np.testing.assert_allclose(np.asarray(vjp), expected.T, atol=DOUBLE * 100, rtol=0)


def test_auto_kernel_sends_only_wide_circuits_with_entangling_matrices_to_qsim():
    """From ``QSIM_MIN_WIRES`` complex64 wires, circuits with matrices on several wires
    and single circuits' forward passes run on qsim's fused kernels; batches of one-wire gates and
    permutations stay on the row kernel, which is faster for them; ``kernel="qsim"``
    takes every circuit."""
    from qstore_pl.devices.batched.device import QSIM_MIN_WIRES
    from qstore_pl.devices.batched.kernel import StateKernel
    from qstore_pl.devices.batched.qsim_kernel import QsimStateKernel

    def bound(n, entangling, rows=2):
        angles = np.linspace(0, 1, rows) if rows > 1 else 0.1
        ops = [qml.RY(angles, w) for w in range(n)] + [qml.CNOT([w, w + 1]) for w in range(n - 1)]
        ops += [qml.IsingXX(0.3, [0, n - 1])] if entangling else [qml.Toffoli([0, 1, 2])]
        tape = qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])
        return Program(tape).bind([tape])

    auto = BatchedDevice(wires=QSIM_MIN_WIRES, c_dtype=np.complex64)
    assert isinstance(auto.kernel_for(bound(QSIM_MIN_WIRES, True)), QsimStateKernel)
    assert type(auto.kernel_for(bound(QSIM_MIN_WIRES, False))) is StateKernel
    assert type(auto.kernel_for(bound(QSIM_MIN_WIRES - 1, True))) is StateKernel
    # a single row would get one of the row kernel's threads; qsim's use them all
    assert isinstance(auto.kernel_for(bound(QSIM_MIN_WIRES, False, rows=1)), QsimStateKernel)
    # its backward sweep has ψ and λ rows, and reuses its planes; qsim faults in new ones
    single = bound(QSIM_MIN_WIRES, False, rows=1)
    assert type(auto.kernel_for(single, backward=True)) is StateKernel
    assert isinstance(auto.kernel_for(bound(QSIM_MIN_WIRES, True), True), QsimStateKernel)
    forced = BatchedDevice(wires=QSIM_MIN_WIRES, c_dtype=np.complex64, kernel="qsim")
    assert isinstance(forced.kernel_for(bound(4, False)), QsimStateKernel)


@pytest.mark.parametrize("readout", ["Z on single wires", "with X0 Y3"])
@pytest.mark.parametrize("dtype, tol", [(np.complex128, DOUBLE), (np.complex64, SINGLE)])
@pytest.mark.parametrize("batch", [1, 2])  # one circuit: fewer than threads, rows narrow
def test_a_vjp_with_one_wire_reads_sweeps_each_row_pair_once_and_keeps_the_states(
    batch, readout, dtype, tol, monkeypatch
):
    """A vector-Jacobian product whose trainable gates all have one-wire generators
    runs every step of the sweep on each pair of a ψ row and its λ row in one kernel
    call (``jit_kernels.adjoint_sweep``), reading ψ where the forward pass left it: the
    VJPs equal default.qubit's, and a second VJP from the same forward states (the
    device keeps them) equals the first. With ``<Z>`` readouts alone the kernel makes
    each λ row from its ψ row (the sweep gets two halves of a diagonal, no λ array);
    with others it gets the adjoint states."""
    from qstore_pl.devices.batched import jit_kernels

    monkeypatch.setenv("QSTORE_THREADS", "2")  # one circuit is fewer than the threads
    made_from_psi = []
    sweep = jit_kernels.adjoint_sweep

    def spy(psi, lam, *args, **kwargs):
        made_from_psi.append(isinstance(lam, tuple))
        return sweep(psi, lam, *args, **kwargs)

    monkeypatch.setattr(jit_kernels, "adjoint_sweep", spy)
    n = 10  # 10 wires: single precision reads its 5 lowest bits rotated
    rng = np.random.default_rng(3)
    weights = rng.uniform(-np.pi, np.pi, (2, n, 2))
    observables = [qml.Z(0), qml.Z(n - 1), qml.Z(4)]
    if readout == "with X0 Y3":
        observables[-1] = qml.X(0) @ qml.Y(3)

    def circuit(x):
        ops = [qml.RX(x[i], i) for i in range(n)]
        for layer in weights:
            ops += [qml.RY(layer[i, 0], i) for i in range(n)]
            ops += [qml.RZ(layer[i, 1], i) for i in range(n)]
            ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
        measurements = [qml.expval(o) for o in observables]
        return qml.tape.QuantumScript(ops, measurements, trainable_params=list(range(n, 5 * n)))

    tapes = [circuit(x) for x in rng.uniform(0, np.pi, (batch, n))]
    dys = [tuple(rng.normal(size=len(observables))) for _ in tapes]
    dev = BatchedDevice(wires=n, c_dtype=dtype, kernel="jit")
    config = adjoint_config(dev)
    values, vjps = dev.execute_and_compute_vjp(tapes, dys, config)
    _, again = dev.execute_and_compute_vjp(tapes, dys, config)
    assert made_from_psi == [readout == "Z on single wires"] * 2
    want = run(qml.device("default.qubit"), tapes)
    for tape, got, expected, dy, vjp, second in zip(tapes, values, want, dys, vjps, again):
        np.testing.assert_allclose(flat(got), flat(expected), atol=tol, rtol=0)
        reference = reference_vjp(tape, np.array(dy))
        np.testing.assert_allclose(np.asarray(vjp), reference, atol=tol * 10, rtol=0)
        np.testing.assert_array_equal(np.asarray(second), np.asarray(vjp))


@pytest.mark.parametrize("dtype, tol", [(np.complex128, DOUBLE), (np.complex64, SINGLE)])
@pytest.mark.parametrize("n", [3, 16])  # one thread, and rows split over threads
def test_probability_halves_sum_each_row_over_each_half_of_the_index_bits(n, dtype, tol):
    """``<Z_i>`` readouts come from ``|ψ|²`` summed over the low and over the high half
    of the index bits, in one pass over the states (no probabilities array): the sums
    equal numpy's over the row reshaped to ``(2**high, 2**low)``, and ``measure_all``'s
    values from them equal the probabilities' own."""
    from qstore_pl.devices.batched import jit_kernels
    from qstore_pl.devices.batched.measure import measure_all, z_expectations

    rng = np.random.default_rng(4)
    states = (rng.normal(size=(5, 2**n)) + 1j * rng.normal(size=(5, 2**n))).astype(dtype)
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    low = n - n // 2
    by_high, by_low = jit_kernels.probability_halves(states, low)
    blocks = (np.abs(states.astype(np.complex128)) ** 2).reshape(5, 2 ** (n // 2), 2**low)
    np.testing.assert_allclose(by_high, blocks.sum(axis=2), atol=tol, rtol=0)
    np.testing.assert_allclose(by_low, blocks.sum(axis=1), atol=tol, rtol=0)
    measurements = [qml.expval(qml.Z(w)) for w in range(n)] + [qml.expval(qml.Identity(0))]
    kernel = BatchedDevice(wires=n, c_dtype=dtype)._jit
    norm, single = z_expectations(np.abs(states.astype(np.complex128)) ** 2, n)
    values = measure_all(kernel, states, measurements, n)
    np.testing.assert_allclose(np.stack(values[:n], axis=1), single, atol=tol, rtol=0)
    np.testing.assert_allclose(values[n], norm, atol=tol, rtol=0)


@pytest.mark.parametrize("n, k", [(12, 3), (12, 6), (13, 10), (16, 8), (17, 8)])
def test_rotations_transpose_rows_in_every_layout(n, k):
    """``_rotate`` moves a row's lowest ``k`` index bits to the top (the row as a matrix
    of ``2**k`` columns, transposed) by each of its layouts: eight output streams for
    ``k = 3``, eight input streams for ``k = n - 3`` (the rotation back), column by
    column, and ``8 x 8`` tiles from 256 rows and columns."""
    from qstore_pl.devices.batched import jit_kernels

    plane = np.arange(2**n, dtype=np.float32)
    want = plane.reshape(-1, 2**k).T.ravel()
    out = np.full_like(plane, -1.0)
    jit_kernels._rotate(plane, out, k)
    assert np.array_equal(out, want)


def test_scratch_planes_start_on_a_cache_line_and_serve_every_step_of_a_sweep():
    """The sweep's planes (small buffers from numpy, larger ones mapped in small pages)
    start on a cache line, take writes, and later steps reuse them."""
    from qstore_pl.devices.batched.jit_kernels import Scratch

    for size in (16, 1 << 17):
        scratch = Scratch()
        planes = scratch.planes(2, 10, size, np.float64)
        assert planes.shape == (2, 10, size) and planes.flags.c_contiguous
        assert planes.ctypes.data % 64 == 0
        planes[...] = 1.0
        again = scratch.planes(1, 8, size, np.float64)
        assert again.ctypes.data == planes.ctypes.data and again.shape == (1, 8, size)
        assert scratch.planes(1, 4, size, np.float32).dtype == np.float32  # a new buffer


@pytest.mark.parametrize("dtype, tol", [(np.complex128, DOUBLE), (np.complex64, SINGLE)])
@pytest.mark.parametrize("n", [15, 16])
def test_one_circuit_undoes_psi_and_each_adjoint_state_on_threads_of_their_own(
    n, dtype, tol, monkeypatch
):
    """With fewer circuits than threads, each adjoint step undoes its gates on ψ and on
    every λ row in parallel, one row per thread, then reads with every thread: a single
    circuit's Jacobian of three outputs (three λ rows) and its VJP (one) equal
    default.qubit's, through one-wire, controlled and entangling gates.

    From 2**15 amplitudes a circuit gets threads (PARALLEL_MIN_AMPLITUDES); in single
    precision the threads share the rotated copies the low bits are read from, column
    by column at 15 qubits and in tiles at 16.
    """
    monkeypatch.setenv("QSTORE_THREADS", "2")
    rng = np.random.default_rng(11)
    weights = rng.uniform(-np.pi, np.pi, 4 * n)
    observables = [qml.Z(0), qml.Z(n - 1), qml.X(3) @ qml.Y(n - 2)]

    def circuit(w):
        ops = [qml.RY(w[i], i) for i in range(n)] + [qml.RZ(w[n + i], i) for i in range(n)]
        ops += [qml.CNOT([i, (i + 1) % n]) for i in range(n)]
        ops += [qml.CRX(w[2 * n + i], [i, (i + 2) % n]) for i in range(n)]
        ops += [qml.RX(w[3 * n + i], i) for i in range(n)]
        return qml.tape.QuantumScript(ops, [qml.expval(o) for o in observables])

    def reference(w):
        (result,) = qml.execute([circuit(w)], qml.device("default.qubit"), diff_method="backprop")
        return qml.math.stack(result)

    dev = BatchedDevice(wires=n, c_dtype=dtype)
    values, (jacobian,) = dev.execute_and_compute_derivatives(
        [circuit(weights)], adjoint_config(dev)
    )
    dy = rng.normal(size=len(observables))
    _, (vjp,) = dev.execute_and_compute_vjp([circuit(weights)], [tuple(dy)], adjoint_config(dev))
    want = qml.jacobian(reference)(qml.numpy.array(weights, requires_grad=True))
    np.testing.assert_allclose(np.stack(values[0]), reference(weights), atol=tol, rtol=0)
    np.testing.assert_allclose(np.stack(jacobian), want, atol=tol * 10, rtol=0)
    np.testing.assert_allclose(np.asarray(vjp), dy @ want, atol=tol * 100, rtol=0)


@pytest.mark.parametrize(
    "n, batches, bits, dtype, tol",
    [
        (17, (1, 2), range(17), np.complex128, DOUBLE),
        (17, (1, 2), range(17), np.complex64, SINGLE),
        (21, (2,), range(21), np.complex64, SINGLE),  # tiles' runs shorter than 2**(n//2)
        (23, (2,), (0, 4, 12, 15, 16, 20, 22), np.complex64, SINGLE),  # tiles over a block
    ],
)
def test_transition_reads_of_one_row_or_several_equal_numpys(n, batches, bits, dtype, tol):
    """The adjoint sweep's ``2x2`` transition matrices, read with every thread on the
    bits (a single circuit: fewer rows than threads) or row by row, block by block
    (rows wider than a cache block; bits below 2**10 by masked sums over sub-blocks;
    the diagonal sums and the bits across blocks from each tile's copy), equal numpy's
    sums over each bit's index pairs."""
    import numba

    from qstore_pl.devices.batched import jit_kernels

    rng = np.random.default_rng(3)
    bits = np.array(bits, dtype=np.int64)
    off = np.arange(bits.size) % 3 != 1
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for batch in batches:  # with 2 threads: split over bits, then over rows
            rows = batch + 2 * batch  # ψ over two stacked adjoint copies
            states = rng.normal(size=(rows, 2**n)) + 1j * rng.normal(size=(rows, 2**n))
            states = (states / np.linalg.norm(states, axis=1, keepdims=True)).astype(dtype)
            out = np.full((rows - batch, bits.size, 2, 2), np.nan, dtype=complex)
            jit_kernels.read_transitions(states, batch, bits, off, out)
            for j in range(rows - batch):
                psi, lam = states[j % batch].astype(complex), states[batch + j].astype(complex)
                for i, b in enumerate(bits):
                    p = psi.reshape(-1, 2, 2**b)
                    la = np.conj(lam.reshape(-1, 2, 2**b))
                    want = np.einsum("xay,xby->ab", la, p)
                    if not off[i]:
                        want[0, 1] = want[1, 0] = 0
                    np.testing.assert_allclose(out[j, i], want, atol=tol * 10, rtol=0)
    finally:
        numba.set_num_threads(threads)


def test_gates_of_one_standard_class_share_one_generator_and_others_keep_their_own():
    tape = qml.tape.QuantumScript(
        [
            qml.RX(0.1, 0),
            qml.RX(0.7, 2),
            qml.IsingXX(0.3, [2, 1]),
            qml.PauliRot(0.2, "XY", [0, 1]),
            qml.PauliRot(0.4, "ZZ", [1, 2]),
        ],
        [qml.expval(qml.Z(0))],
    )
    gates = Program(tape).gates
    rx, rx_other, ising, xy, zz = (t.generator for t in gates)
    assert rx.matrix is rx_other.matrix and rx.wires == (0,) and rx_other.wires == (2,)
    for op, generator in zip(tape.operations, (rx, rx_other, ising, xy, zz)):
        want = qml.matrix(op.generator(), wire_order=op.wires)
        np.testing.assert_allclose(generator.matrix, want, atol=1e-15)
    assert xy.matrix is not zz.matrix  # a Pauli word is not the class's


def opening_tape(n: int, seed: int) -> qml.tape.QuantumScript:
    """Opening one-wire gates of every kind (angles of the tape's own, fixed matrices, a
    permutation, diagonals, a wire with none), a global phase, then entanglers and
    more one-wire gates."""
    angles = np.random.default_rng(seed).uniform(0, np.pi, n)
    ops = [qml.RX(angles[w], w) for w in range(n - 1)]
    ops += [qml.Hadamard(0), qml.PauliX(1), qml.PhaseShift(0.3, 2), qml.S(3), qml.GlobalPhase(0.7)]
    weights = np.random.default_rng(5).uniform(-np.pi, np.pi, (3, n))
    ops += [qml.RY(weights[0, w], w) for w in range(n - 1)]
    ops += [qml.RZ(weights[1, w], w) for w in range(n - 1)]
    ops += [qml.CNOT([w, (w + 1) % n]) for w in range(n)]
    ops += [qml.RX(0.4, 0)] + [qml.RY(weights[2, w], w) for w in range(n)]
    ops += [qml.CNOT([w, (w + 1) % n]) for w in range(n)]
    measurements = [qml.expval(qml.Z(0)), qml.expval(qml.Z(n - 1)), qml.expval(qml.X(0) @ qml.Y(3))]
    gate_params = sum(op.num_params for op in ops)
    return qml.tape.QuantumScript(ops, measurements, trainable_params=list(range(gate_params)))


@pytest.mark.parametrize("dtype, tol", [(np.complex128, DOUBLE), (np.complex64, SINGLE)])
@pytest.mark.parametrize("n", [5, 11])  # 11: the plan rotates the rows' low bits
def test_opening_one_wire_gates_start_each_row_as_their_product_state(n, dtype, tol, monkeypatch):
    """The one-wire gates before any entangler on their wire are no passes over the
    states: each row starts as the product state they leave (``product_start``), and
    the states, values and VJPs equal default.qubit's. At the sweep's last reads only
    such gates are left, so ψ there is a product state too (global phase included):
    those reads come from λ alone."""
    from qstore_pl.devices.batched import adjoint

    monkeypatch.setenv("QSTORE_THREADS", "2")  # the one-call sweep from 2 circuits
    starts = []
    product_start = adjoint.product_start

    def spy(bound, positions, phase=False):
        starts.append(phase)
        return product_start(bound, positions, phase)

    monkeypatch.setattr(adjoint, "product_start", spy)
    tapes = [opening_tape(n, seed) for seed in range(3)]
    dev = BatchedDevice(wires=n, c_dtype=dtype, kernel="jit")
    dys = [tuple(np.random.default_rng(seed).normal(size=3)) for seed in range(3)]
    values, vjps = dev.execute_and_compute_vjp(tapes, dys, adjoint_config(dev))
    assert starts == [False, True]  # the forward pass, then the sweep's last reads
    want = run(qml.device("default.qubit"), tapes)
    for tape, got, expected, dy, vjp in zip(tapes, values, want, dys, vjps):
        np.testing.assert_allclose(flat(got), flat(expected), atol=tol, rtol=0)
        reference = reference_vjp(tape, np.array(dy))
        np.testing.assert_allclose(np.asarray(vjp), reference, atol=tol * 10, rtol=0)
    states = [tape.copy(measurements=[qml.state()]) for tape in tapes]
    got = qml.execute(states, dev)
    for row, expected in zip(got, qml.execute(states, qml.device("default.qubit"))):
        np.testing.assert_allclose(row, expected, atol=tol, rtol=0)


@pytest.mark.parametrize("dtype, tol", [(np.complex128, DOUBLE), (np.complex64, SINGLE)])
@pytest.mark.parametrize("circuits", [1, 3])  # one circuit: fewer rows than threads
def test_step_by_step_sweeps_read_their_last_step_from_the_product_state(
    circuits, dtype, tol, monkeypatch
):
    """Jacobians (an adjoint state per output) and single circuits take the sweep step
    by step; there too the last step undoes λ alone and reads against ψ's product state
    (``jit_kernels.product_reads``), and every Jacobian entry equals default.qubit's."""
    from qstore_pl.devices.batched import jit_kernels

    monkeypatch.setenv("QSTORE_THREADS", "2")
    calls = []
    product_reads = jit_kernels.product_reads

    def spy(lam, batch, *args, **kwargs):
        calls.append((lam.shape[0], batch))
        return product_reads(lam, batch, *args, **kwargs)

    monkeypatch.setattr(jit_kernels, "product_reads", spy)
    n = 5
    tapes = [opening_tape(n, seed) for seed in range(circuits)]
    dev = BatchedDevice(wires=n, c_dtype=dtype, kernel="jit")
    config = dev.setup_execution_config(
        ExecutionConfig(gradient_method="adjoint", use_device_jacobian_product=False)
    )
    jacobians = dev.compute_derivatives(tapes, config)
    assert calls == [(3 * circuits, circuits)]  # three outputs: three λ rows per circuit
    for tape, jac in zip(tapes, jacobians):
        for m in range(3):
            basis = np.eye(3)[m]
            got = np.array([float(j) for j in jac[m]])
            np.testing.assert_allclose(got, reference_vjp(tape, basis), atol=tol * 10, rtol=0)


def test_a_circuit_of_one_wire_gates_alone_is_its_product_state():
    """With no entangler at all the whole circuit is the product state: nothing is left
    to apply, and the states still equal default.qubit's."""
    ops = [qml.RX(np.array([0.1, 0.7]), 0), qml.Hadamard(1), qml.RY(0.4, 1), qml.T(2)]
    tape = qml.tape.QuantumScript(ops, [qml.state()])
    got = qml.execute([tape], BatchedDevice(wires=3, kernel="jit"))[0]
    want = qml.execute([tape], qml.device("default.qubit"))[0]
    np.testing.assert_allclose(got, want, atol=DOUBLE, rtol=0)


@pytest.mark.parametrize("dtype, tol", [(np.float64, DOUBLE), (np.float32, SINGLE)])
@pytest.mark.parametrize("n", [1, 5, 16])
def test_transitions_against_a_product_state_equal_numpys(n, dtype, tol):
    """``_product_transitions``: the ``2x2`` transition matrices of λ against the
    product state of per-bit factors, read from λ alone, equal numpy's sums over each
    bit's index pairs of the product state built out."""
    from qstore_pl.devices.batched import jit_kernels

    rng = np.random.default_rng(7)
    factors = rng.normal(size=(n, 2)) + 1j * rng.normal(size=(n, 2))
    psi = product_state(factors)
    lam = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    ar, ai = lam.real.astype(dtype), lam.imag.astype(dtype)
    bits = np.array(rng.permutation(n), dtype=np.int64)
    out = np.full((n, 2, 2), np.nan, dtype=complex)
    own = np.zeros((1, 2), dtype=np.int64)  # f's own halves
    fr, fi = factors.real.copy(), factors.imag.copy()
    jit_kernels._product_transitions(ar, ai, fr, fi, bits, out, own, own)
    planes = np.empty((2, 2**n), dtype)
    jit_kernels._product_planes(planes[0], planes[1], fr, fi)
    np.testing.assert_allclose(planes[0] + 1j * planes[1], psi, atol=tol * 10, rtol=tol)
    scale = np.abs(lam).sum() * np.abs(psi).max()
    np.testing.assert_allclose(out, numpy_transitions(lam, psi, bits), atol=tol * scale, rtol=0)


def product_state(factors: np.ndarray) -> np.ndarray:
    """``⊗ f_b`` of per-bit factors ``(n, 2)``, bit ``n - 1`` the most significant."""
    psi = np.ones(1, dtype=complex)
    for b in reversed(range(len(factors))):
        psi = np.kron(psi, factors[b])
    return psi


def numpy_transitions(lam: np.ndarray, psi: np.ndarray, bits) -> np.ndarray:
    """``Σ conj(λ[k_a]) ψ[k_b]`` over each bit's index pairs, ``(bits, 2, 2)``."""
    out = []
    for b in bits:
        p = psi.reshape(-1, 2, 2**b)
        la = np.conj(lam.reshape(-1, 2, 2**b))
        out.append(np.einsum("xay,xby->ab", la, p))
    return np.array(out)
