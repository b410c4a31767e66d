"""Correctness of ``qstore.router``: values and derivatives against ``default.qubit``.

Random circuits from a seeded RNG (2-5 qubits; rotations, controlled rotations, Ising
gates, entanglers) are run through the router and through ``default.qubit``, and the
results and Jacobians are compared in every ML interface the router serves: autograd,
torch, jax (plain and under ``jax.jit``) and tensorflow. Every comparison checks the
nesting, container types, shapes and dtypes of the results as well as the numbers.

Each test runs against each backend path: the router restricted to one backend (and
the tracker must show that backend ran), and the default ``"auto"`` routing. A
module-wide check fails any test in which a backend failed and the router silently
fell back to another one, so a broken backend cannot hide behind a working one.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from qstore_pl.exceptions import UnsupportedCircuitError

# ---------------------------------------------------------------------------- backends

QSIM = "qstore.qsim"


def _qsim_skip_reason() -> str | None:
    """Why the qsim backend cannot be tested here, or ``None`` when it loads."""
    try:
        qml.device(QSIM, wires=1)
    except Exception as err:  # not written yet, qsimcirq missing, ...
        return f"qml.device({QSIM!r}, wires=1) does not load: {type(err).__name__}: {err}"
    return None


QSIM_SKIP = _qsim_skip_reason()


@dataclass(frozen=True)
class RouterCase:
    """One way of configuring the router.

    Attributes
    ----------
    config : dict
        Keyword arguments for ``qml.device("qstore.router", ...)``.
    backend : str or None
        The backend every group must run on, or ``None`` for free routing.
    """

    config: dict
    backend: str | None


ROUTER_CASES = [
    pytest.param(RouterCase({"backends": ["lightning.qubit"]}, "lightning.qubit"), id="lightning"),
    pytest.param(RouterCase({"backends": ["default.qubit"]}, "default.qubit"), id="default"),
    pytest.param(RouterCase({}, None), id="auto"),
    pytest.param(RouterCase({"backends": ["qstore.batched"]}, "qstore.batched"), id="batched"),
    pytest.param(
        RouterCase({"backends": [QSIM]}, QSIM),
        id="qsim",
        marks=pytest.mark.skipif(QSIM_SKIP is not None, reason=str(QSIM_SKIP)),
    ),
]

# A complex64 lightning.qubit: a second single-precision backend, so the precision
# rules and the single-precision tolerances do not hinge on qsim alone.
LIGHTNING_C64 = {
    "name": "lightning.c64",
    "type": "lightning.qubit",
    "options": {"c_dtype": "complex64"},
}

# ------------------------------------------------------------------------- tolerances
#
# complex128 backends: every gate and every measurement is exact up to rounding
# (~1e-16 relative per operation). Our circuits have at most ~60 gates and
# observables with coefficients |c| <= 2, so rounding stays below ~1e-13, and the
# derivative methods (adjoint, parameter shift, backprop in the reference) are exact
# formulas, not finite differences. 1e-9 leaves four orders of headroom and is still
# far below any real bug (a wrong wire, sign or angle moves results by >= 1e-3).
#
# complex64 backends: float32 rounding is ~6e-8 per operation; after ~30 gates and a
# sum of a few terms with |c| <= 2 it reaches a few 1e-6 on values. Parameter-shift
# Jacobians combine up to four shifted evaluations per occurrence of a parameter, so
# they get a little more room.


@dataclass(frozen=True)
class Tolerance:
    """Absolute tolerances for values and for derivatives."""

    values: float
    derivatives: float


DOUBLE = Tolerance(values=1e-9, derivatives=1e-9)
SINGLE = Tolerance(values=2e-5, derivatives=5e-5)
TF_DERIVATIVES = 1e-6  # see test_tensorflow_jacobian


def tolerance_for(dev) -> Tolerance:
    """The tolerance for the least precise backend the router may choose."""
    dtypes = {spec.capabilities.dtype for spec in dev.backends}
    precision = dev.config.precision
    if "complex64" in dtypes and precision == "single":
        return SINGLE
    return DOUBLE


# ----------------------------------------------------------------------- the router


@pytest.fixture
def make_router() -> Iterator[Callable[..., Any]]:
    """Factory for router devices; after the test, checks that no backend failed.

    The router falls back down its ranking when a backend raises. That is right in
    production but would let a broken backend pass these tests on another one, so any
    failure recorded in the routing report fails the test.
    """
    made = []

    def factory(case: RouterCase, wires, **kwargs):
        dev = qml.device("qstore.router", wires=wires, **case.config, **kwargs)
        made.append(dev)
        return dev

    yield factory
    for dev in made:
        report = dev.routing_report()
        failures = {name: t.failures for name, t in report.totals.items() if t.failures}
        assert not failures, f"backends failed and the router fell back: {failures}\n{report}"


@contextmanager
def expect_backend(dev, case: RouterCase) -> Iterator[qml.Tracker]:
    """Track ``dev`` and check afterwards which backends ran.

    An explicit-backend case must run every group on that backend; free routing may
    use any enabled backend. Either way the tracker must have seen executions.
    """
    with qml.Tracker(dev) as tracker:
        yield tracker
    used = set(tracker.history.get("backend", []))
    assert used, "the router reported no backend run to the tracker"
    if case.backend is not None:
        assert used == {case.backend}
    else:
        assert used <= {spec.name for spec in dev.backends}
    for name in used:
        assert tracker.totals[f"executions:{name}"] > 0


def can_differentiate_state(dev) -> bool:
    """Whether some enabled backend differentiates a state measurement."""
    derivatives = [spec.capabilities.derivatives for spec in dev.backends]
    return any("state" in kinds for methods in derivatives for kinds in methods.values())


def can_differentiate_probs(dev) -> bool:
    """Whether some enabled backend differentiates probabilities (natively, by
    parameter shift, or through the state)."""
    derivatives = [spec.capabilities.derivatives for spec in dev.backends]
    kinds = {kind for methods in derivatives for found in methods.values() for kind in found}
    return bool(kinds & {"probs", "state"})


def derivative_tasks(dev) -> set[str]:
    """Tasks the router ran that computed derivatives itself (not plain executions)."""
    return {run.task for run in dev.routing_report().recent if run.task != "execute"}


# ----------------------------------------------------------------- random circuits

_ONE_QUBIT = (("RX", 1), ("RY", 1), ("RZ", 1), ("PhaseShift", 1), ("Rot", 3), ("Hadamard", 0))
_TWO_QUBIT = (
    ("CNOT", 0),
    ("CZ", 0),
    ("IsingZZ", 1),
    ("IsingXX", 1),
    ("CRX", 1),
    ("CRY", 1),
    ("CRZ", 1),
    ("CRot", 3),
    ("ControlledPhaseShift", 1),
)
_THREE_QUBIT = (("Toffoli", 0), ("MultiRZ", 1))
_GATE_WIRES = {
    gate: k for k, family in enumerate((_ONE_QUBIT, _TWO_QUBIT, _THREE_QUBIT), 1) for gate in family
}
_PAULIS = {"X": qml.X, "Y": qml.Y, "Z": qml.Z}


@dataclass(frozen=True)
class Gate:
    """One gate of a random circuit.

    ``params`` holds ``("w", i)`` for ``weights[i]`` and ``("c", value)`` for a fixed
    angle, so circuits mix trainable and non-trainable parameters.
    """

    name: str
    wires: tuple
    params: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class RandomCircuit:
    """A random circuit: an optional RX encoding layer followed by random gates."""

    wires: tuple
    gates: tuple[Gate, ...]
    num_weights: int

    def apply(self, weights, inputs=None) -> None:
        """Queue the gates; ``inputs`` (shape ``(n,)`` or ``(batch, n)``) feeds RX."""
        if inputs is not None:
            for i, wire in enumerate(self.wires):
                qml.RX(inputs[..., i], wires=wire)
        for gate in self.gates:
            args = [weights[v] if kind == "w" else v for kind, v in gate.params]
            getattr(qml, gate.name)(*args, wires=gate.wires)

    def weights(self, seed: int) -> np.ndarray:
        """Random weights for this circuit."""
        return np.random.default_rng(seed).uniform(-np.pi, np.pi, self.num_weights)


def random_circuit(seed: int, wires: Sequence, num_gates: int | None = None) -> RandomCircuit:
    """A random circuit on ``wires`` from a seeded RNG.

    It starts with RY on every wire (so no amplitude is trivially zero), then draws
    gates from every family. About one parameter in five is a fixed angle, and one
    weight is reused by a second gate, so the chain rule over shared parameters and
    the split between trainable and fixed parameters are both exercised.
    """
    rng = np.random.default_rng(seed)
    wires = tuple(wires)
    n = len(wires)
    pool = list(_ONE_QUBIT) + (list(_TWO_QUBIT) if n >= 2 else [])
    pool += list(_THREE_QUBIT) if n >= 3 else []
    num_gates = num_gates if num_gates is not None else int(rng.integers(3 * n, 4 * n + 1))
    gates = [Gate("RY", (w,), (("w", i),)) for i, w in enumerate(wires)]
    count = n
    for _ in range(num_gates):
        name, num_params = pool[int(rng.integers(len(pool)))]
        size = _GATE_WIRES[name, num_params]
        on = tuple(wires[i] for i in rng.choice(n, size=size, replace=False))
        params = []
        for _ in range(num_params):
            if rng.random() < 0.2:
                params.append(("c", float(rng.uniform(-np.pi, np.pi))))
            else:
                params.append(("w", count))
                count += 1
        gates.append(Gate(name, on, tuple(params)))
    # a shared weight: the first weight also drives one more gate at the end
    gates.append(Gate("CRY" if n >= 2 else "RX", wires[:2] if n >= 2 else wires, (("w", 0),)))
    return RandomCircuit(wires, tuple(gates), count)


def random_pauli_word(rng: np.random.Generator, wires: Sequence, k: int):
    """A tensor product of ``k`` random Paulis on distinct random wires."""
    chosen = rng.choice(len(wires), size=min(k, len(wires)), replace=False)
    return functools.reduce(
        operator.matmul, [_PAULIS[rng.choice(list(_PAULIS))](wires[i]) for i in chosen]
    )


def random_observables(seed: int, wires: Sequence) -> list:
    """Multi-qubit observables: Z⊗Z⊗X, a Hamiltonian, a Sum and a Hermitian."""
    rng = np.random.default_rng(seed + 1000)
    order = [wires[i] for i in rng.permutation(len(wires))]
    if len(wires) >= 3:
        zzx = qml.Z(order[0]) @ qml.Z(order[1]) @ qml.X(order[2])
    else:
        zzx = qml.Z(order[0]) @ qml.X(order[1])
    words = [random_pauli_word(rng, wires, k) for k in (1, 2, 3)]
    hamiltonian = qml.Hamiltonian(rng.uniform(-2, 2, 3), words)
    coeffs = rng.uniform(-2, 2, 2)
    op_sum = coeffs[0] * random_pauli_word(rng, wires, 2) + coeffs[1] * qml.Y(order[-1])
    dim = 4
    a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    hermitian = qml.Hermitian((a + a.conj().T) / 2, wires=order[:2])
    return [zzx, hamiltonian, op_sum, hermitian]


def observable_scale(obs) -> float:
    """An upper bound on ``|eigenvalue|`` of an observable (for shot-noise bounds)."""
    if isinstance(obs, qml.Hermitian):
        return float(np.max(np.abs(np.linalg.eigvalsh(obs.matrix()))))
    if isinstance(obs, (qml.ops.Sum, qml.ops.LinearCombination)):
        coeffs, _ = obs.terms()
        return float(np.sum(np.abs(coeffs)))
    return 1.0


def num_wires_for(seed: int) -> int:
    """2-5 qubits, varying with the seed."""
    return 2 + seed % 4


SEEDS = [0, 1, 2, 3]


@dataclass
class Problem:
    """A random circuit, its observables and weights for one seed."""

    circuit: RandomCircuit
    observables: list
    weights: np.ndarray

    @classmethod
    def make(cls, seed: int, wires: Sequence | None = None) -> Problem:
        """The problem for ``seed`` on ``wires`` (default ``0 .. n-1``)."""
        wires = list(wires) if wires is not None else list(range(num_wires_for(seed)))
        circuit = random_circuit(seed, wires)
        return cls(circuit, random_observables(seed, wires), circuit.weights(seed))

    def expvals(self, weights, inputs=None):
        """Quantum function: expectation values of every observable."""
        self.circuit.apply(weights, inputs)
        return tuple(qml.expval(obs) for obs in self.observables)

    def mixed(self, weights, inputs=None):
        """Quantum function: probs (unsorted wire order), var, expval and full probs."""
        self.circuit.apply(weights, inputs)
        wires = self.circuit.wires
        return (
            qml.probs(wires=[wires[-1], wires[0]]),
            qml.var(self.observables[0]),
            qml.expval(self.observables[1]),
            qml.probs(),
        )

    def state(self, weights, inputs=None):
        """Quantum function: the state vector."""
        self.circuit.apply(weights, inputs)
        return qml.state()

    def probs(self, weights, inputs=None):
        """Quantum function: probabilities of a subset of wires, in reversed order."""
        self.circuit.apply(weights, inputs)
        return qml.probs(wires=list(reversed(self.circuit.wires[:2])))


# ---------------------------------------------------------------------- comparisons


def assert_results_close(actual, expected, atol: float, interface: str | None = None, where="r"):
    """Same nesting, container types, shapes and (to ``atol``) values.

    With ``interface``, every leaf of ``actual`` must be a tensor of that interface. The
    dtypes must match as well (float64 inputs may not come back as float32, not even
    from a complex64 backend), except in the structure-only checks of sampled results.
    """
    if isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected), (
            f"{where}: {type(actual).__name__} instead of {type(expected).__name__}"
        )
        assert len(actual) == len(expected), f"{where}: {len(actual)} != {len(expected)} items"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_results_close(a, e, atol, interface, f"{where}[{i}]")
        return
    if interface is not None:
        assert qml.math.get_interface(actual) == interface, f"{where}: {type(actual)}"
    a, e = np.asarray(qml.math.to_numpy(actual)), np.asarray(qml.math.to_numpy(expected))
    assert a.shape == e.shape, f"{where}: shape {a.shape} != {e.shape}"
    if atol < 0.5:  # not for the loose structure-only checks of sampled results
        assert a.dtype == e.dtype, f"{where}: dtype {a.dtype} != {e.dtype}"
    np.testing.assert_allclose(a, e, atol=atol, rtol=0, err_msg=where)


def reference(qfunc, wires, **qnode_kwargs) -> qml.QNode:
    """The same quantum function on default.qubit (backprop unless told otherwise)."""
    qnode_kwargs.setdefault("diff_method", "backprop")
    return qml.QNode(qfunc, qml.device("default.qubit", wires=wires), **qnode_kwargs)


def reference_jacobian(qfunc, wires, weights, *args):
    """Jacobian w.r.t. ``weights`` from default.qubit backprop in autograd.

    autograd keeps float64/complex128 end to end, so this one reference serves every
    interface (default.qubit backprop in TensorFlow, for one, is ~1e-8 off). Nested as
    torch and jax nest Jacobians: for a tuple of measurements, one array of shape
    ``(*measurement_shape, num_weights)`` per measurement.
    """
    qnode = reference(qfunc, wires)
    x = pnp.array(weights, requires_grad=True)
    out = qnode(x, *args)
    if isinstance(out, (tuple, list)):
        return type(out)(
            qml.jacobian(lambda w, i=i: qnode(w, *args)[i])(x) for i in range(len(out))
        )
    return qml.jacobian(qnode)(x, *args)


def flat_jacobian(jac, num_weights: int) -> np.ndarray:
    """A nested Jacobian as one ``(num_outputs, num_weights)`` array."""
    parts = jac if isinstance(jac, (tuple, list)) else [jac]
    return np.concatenate([np.reshape(qml.math.to_numpy(j), (-1, num_weights)) for j in parts])


def flatten(results):
    """Results of one or more measurements (or tapes) as one flat tensor."""
    if hasattr(results, "shape"):  # a tensor; sequences may be autograd SequenceBoxes
        return qml.math.reshape(results, (-1,))
    return qml.math.concatenate([flatten(r) for r in results])


# ============================================================================= tests
# forward values


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["expvals", "mixed", "state"])
def test_values_match_default_qubit(make_router, case, seed, kind):
    """Expectation values, probs, var and the state of random circuits."""
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qfunc = getattr(problem, kind)
    with expect_backend(dev, case):
        result = qml.QNode(qfunc, dev)(problem.weights)
    expected = reference(qfunc, wires)(problem.weights)
    assert_results_close(result, expected, tolerance_for(dev).values)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_values_complex64_backend(make_router, seed):
    """A complex64 backend agrees with default.qubit to single-precision tolerance."""
    case = RouterCase({"backends": [LIGHTNING_C64]}, "lightning.c64")
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    assert tolerance_for(dev) is SINGLE
    with expect_backend(dev, case):
        result = qml.QNode(problem.mixed, dev)(problem.weights)
        jac = qml.jacobian(qml.QNode(problem.probs, dev, diff_method="parameter-shift"))(
            pnp.array(problem.weights, requires_grad=True)
        )
    expected = reference(problem.mixed, wires)(problem.weights)
    assert_results_close(result, expected, SINGLE.values)
    expected_jac = reference_jacobian(problem.probs, wires, problem.weights)
    assert_results_close(jac, expected_jac, SINGLE.derivatives)
    # guard: these really are float32 numbers, so the double tolerance would fail
    assert np.max(np.abs(result[3] - expected[3])) > 1e-12


# ----------------------------------------------------------------------- autograd


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize(
    ("diff_method", "seed"),
    # "best" takes the adjoint path for analytic expvals: two seeds check the resolution
    [("adjoint", seed) for seed in SEEDS]
    + [("best", 0), ("best", 1)]
    # parameter shift on the larger circuits (4 and 5 qubits)
    + [("parameter-shift", 2), ("parameter-shift", 3)],
)
def test_autograd_jacobian(make_router, case, seed, diff_method):
    """Jacobian of four expectation values (Pauli word, Hamiltonian, Sum, Hermitian)."""
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qnode = qml.QNode(problem.expvals, dev, diff_method=diff_method)
    x = pnp.array(problem.weights, requires_grad=True)
    with expect_backend(dev, case):
        jac = qml.jacobian(lambda w: qml.math.stack(qnode(w)))(x)
    expected = flat_jacobian(reference_jacobian(problem.expvals, wires, x), len(x))
    assert_results_close(jac, expected, tolerance_for(dev).derivatives)
    if diff_method in ("adjoint", "best"):
        # analytic expvals: the router differentiates, not PennyLane's shift rule
        assert derivative_tasks(dev), dev.routing_report()
    else:
        assert not derivative_tasks(dev)


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_autograd_jacobian_of_probs(make_router, case, seed):
    """probs with "best": the device gradient where a backend differentiates
    probabilities (natively, by parameter shift on the backend, or as a state plus
    postprocessing), else PennyLane's parameter shift."""
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    x = pnp.array(problem.weights, requires_grad=True)
    with expect_backend(dev, case):
        jac = qml.jacobian(qml.QNode(problem.probs, dev, diff_method="best"))(x)
    expected = reference_jacobian(problem.probs, wires, x)
    assert_results_close(jac, expected, tolerance_for(dev).derivatives)
    assert bool(derivative_tasks(dev)) == can_differentiate_probs(dev), dev.routing_report()


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_autograd_jacobian_mixed_measurements(make_router, case, seed):
    """probs, var, expval and full probs in one QNode ("best" lets PennyLane shift)."""
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qnode = qml.QNode(problem.mixed, dev, diff_method="best")
    x = pnp.array(problem.weights, requires_grad=True)
    with expect_backend(dev, case):
        jac = qml.jacobian(lambda w: flatten(qnode(w)))(x)
    expected = flat_jacobian(reference_jacobian(problem.mixed, wires, x), len(x))
    assert_results_close(jac, expected, tolerance_for(dev).derivatives)


@pytest.mark.parametrize("case", ROUTER_CASES)
def test_autograd_jacobian_of_state(make_router, case):
    """Jacobian of the real and imaginary parts of the state."""
    problem = Problem.make(1)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    x = pnp.array(problem.weights, requires_grad=True)

    def parts(qn):
        def f(w):
            state = qn(w)
            return qml.math.stack([qml.math.real(state), qml.math.imag(state)])

        return f

    qnode = qml.QNode(problem.state, dev, diff_method="best")
    if not can_differentiate_state(dev):
        # as on lightning.qubit itself: "best" becomes parameter shift, which refuses
        with pytest.raises(ValueError, match="return the state"):
            qml.jacobian(parts(qnode))(x)
        return
    with expect_backend(dev, case):
        jac = qml.jacobian(parts(qnode))(x)
    expected = qml.jacobian(parts(reference(problem.state, wires)))(x)
    assert_results_close(jac, expected, tolerance_for(dev).derivatives)
    assert derivative_tasks(dev), dev.routing_report()


# -------------------------------------------------------------------------- torch


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_torch_jacobian(make_router, case, seed):
    """Values and ``torch.autograd.functional.jacobian`` with the device gradient."""
    torch = pytest.importorskip("torch")
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qnode = qml.QNode(problem.expvals, dev, diff_method="best")
    x = torch.tensor(problem.weights, requires_grad=True)
    with expect_backend(dev, case):
        result = qnode(x)
        jac = torch.autograd.functional.jacobian(qnode, x)
    tol = tolerance_for(dev)
    expected = reference(problem.expvals, wires)(problem.weights)
    assert_results_close(result, expected, tol.values, interface="torch")
    expected_jac = reference_jacobian(problem.expvals, wires, problem.weights)
    assert_results_close(jac, expected_jac, tol.derivatives, interface="torch")
    assert derivative_tasks(dev), dev.routing_report()


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("kind", ["expvals", "probs"])
def test_torch_device_vjp(make_router, case, kind):
    """``device_vjp=True``: backward of a weighted sum asks the router for a VJP."""
    torch = pytest.importorskip("torch")
    problem = Problem.make(2)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qfunc = getattr(problem, kind)
    qnode = qml.QNode(qfunc, dev, diff_method="best", device_vjp=True)
    cotangent = np.random.default_rng(7).normal(size=4)
    x = torch.tensor(problem.weights, requires_grad=True)
    if kind == "probs" and not can_differentiate_probs(dev):
        # as on lightning.qubit itself: "best" is parameter shift here, which has no VJP
        with pytest.raises(qml.exceptions.QuantumFunctionError, match="device_vjp=True"):
            qnode(x)
        return
    with expect_backend(dev, case):
        out = qnode(x)
        loss = torch.sum(torch.tensor(cotangent) * (torch.stack(out) if kind == "expvals" else out))
        loss.backward()
    tol = tolerance_for(dev)
    expected = flatten(reference(qfunc, wires)(problem.weights))
    assert_results_close(loss, np.dot(cotangent, expected), tol.values, interface="torch")
    expected_jac = flat_jacobian(reference_jacobian(qfunc, wires, problem.weights), x.numel())
    assert_results_close(x.grad, cotangent @ expected_jac, tol.derivatives, interface="torch")
    assert any(task.endswith("vjp") for task in derivative_tasks(dev)), dev.routing_report()


# ---------------------------------------------------------------------------- jax


@pytest.fixture
def jax():
    """jax with 64-bit floats for the duration of a test (complex128 comparisons)."""
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_jax_jacobian(make_router, jax, case, seed):
    """Values and ``jax.jacobian`` of expvals with the device gradient."""
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qnode = qml.QNode(problem.expvals, dev, diff_method="best")
    x = jax.numpy.array(problem.weights)
    with expect_backend(dev, case):
        result = qnode(x)
        jac = jax.jacobian(qnode)(x)
    tol = tolerance_for(dev)
    expected = reference(problem.expvals, wires)(problem.weights)
    assert_results_close(result, expected, tol.values, interface="jax")
    expected_jac = reference_jacobian(problem.expvals, wires, problem.weights)
    assert_results_close(jac, expected_jac, tol.derivatives, interface="jax")
    assert derivative_tasks(dev), dev.routing_report()


@pytest.mark.parametrize("case", ROUTER_CASES)
def test_jax_device_vjp(make_router, jax, case):
    """``device_vjp=True``: ``jax.grad`` of a weighted sum, and ``jax.jacobian`` (which
    hands the router a batch of cotangents)."""
    problem = Problem.make(3)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qnode = qml.QNode(problem.expvals, dev, diff_method="best", device_vjp=True)
    cotangent = np.random.default_rng(3).normal(size=4)
    x = jax.numpy.array(problem.weights)
    with expect_backend(dev, case):
        grad = jax.grad(lambda w: jax.numpy.dot(cotangent, jax.numpy.stack(qnode(w))))(x)
        jac = jax.jacobian(qnode)(x)
    tol = tolerance_for(dev)
    expected_jac = reference_jacobian(problem.expvals, wires, problem.weights)
    expected_grad = cotangent @ flat_jacobian(expected_jac, len(x))
    assert_results_close(grad, expected_grad, tol.derivatives, interface="jax")
    assert_results_close(jac, expected_jac, tol.derivatives, interface="jax")
    assert any(task.endswith("vjp") for task in derivative_tasks(dev)), dev.routing_report()


@pytest.mark.parametrize("case", ROUTER_CASES)
def test_jax_jit(make_router, jax, case):
    """``jax.jit`` of a QNode with mixed measurements, and of a device-gradient Jacobian."""
    problem = Problem.make(1)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    x = jax.numpy.array(problem.weights)
    mixed = qml.QNode(problem.mixed, dev, diff_method="best")
    expvals = qml.QNode(problem.expvals, dev, diff_method="best")
    with expect_backend(dev, case):
        values = jax.jit(mixed)(x)
        jac = jax.jit(jax.jacobian(expvals))(x)
    tol = tolerance_for(dev)
    expected = reference(problem.mixed, wires)(problem.weights)
    assert_results_close(values, expected, tol.values, interface="jax")
    expected_jac = reference_jacobian(problem.expvals, wires, problem.weights)
    assert_results_close(jac, expected_jac, tol.derivatives, interface="jax")
    assert derivative_tasks(dev), dev.routing_report()


# --------------------------------------------------------------------- tensorflow


@pytest.mark.filterwarnings("ignore:Support for the TensorFlow interface is deprecated")
@pytest.mark.parametrize("case", ROUTER_CASES)
# mixed measurements go through parameter shift, one backward pass per output: one seed
@pytest.mark.parametrize(("kind", "seed"), [("expvals", 0), ("expvals", 1), ("mixed", 0)])
def test_tensorflow_jacobian(make_router, case, seed, kind):
    """Values and ``tf.GradientTape.jacobian`` (device gradient for expvals, else shifts)."""
    tf = pytest.importorskip("tensorflow")
    problem = Problem.make(seed)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qfunc = getattr(problem, kind)
    qnode = qml.QNode(qfunc, dev, diff_method="best")
    x = tf.Variable(problem.weights, dtype=tf.float64)
    with expect_backend(dev, case):
        with tf.GradientTape() as tape:
            result = qnode(x)
            flat = tf.concat([tf.reshape(r, [-1]) for r in result], axis=0)
        jac = tape.jacobian(flat, x)
    tol = tolerance_for(dev)
    expected = reference(qfunc, wires)(problem.weights)
    assert_results_close(result, expected, tol.values, interface="tensorflow")
    num_weights = problem.circuit.num_weights
    expected_jac = flat_jacobian(reference_jacobian(qfunc, wires, problem.weights), num_weights)
    # PennyLane's (deprecated) TensorFlow interface passes device and parameter-shift
    # Jacobians through float32: default.qubit's own adjoint is ~1e-8 off here too.
    # Values keep the full tolerance; derivatives get float32 room.
    tf_derivatives = max(tol.derivatives, TF_DERIVATIVES)
    assert_results_close(jac, expected_jac, tf_derivatives, interface="tensorflow")
    if kind == "expvals":
        assert derivative_tasks(dev), dev.routing_report()


# ---------------------------------------------------------- parameter broadcasting

BATCH = 5


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("diff_method", ["best", "parameter-shift"])
def test_torch_layer_broadcast_batch(make_router, case, diff_method):
    """A TorchLayer batch reaches the router as broadcast RX inputs: outputs, and
    gradients for both the weights and the inputs."""
    torch = pytest.importorskip("torch")
    problem = Problem.make(2)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)

    def qfunc(inputs, weights):
        return list(problem.expvals(weights, inputs))  # TorchLayer stacks a list

    layer = qml.qnn.TorchLayer(
        qml.QNode(qfunc, dev, diff_method=diff_method), {"weights": problem.circuit.num_weights}
    )
    layer.qnode_weights["weights"].data = torch.tensor(problem.weights)  # float64
    rng = np.random.default_rng(11)
    inputs_np = rng.uniform(-np.pi, np.pi, (BATCH, wires))
    cotangent = rng.normal(size=(BATCH, len(problem.observables)))
    # PennyLane's parameter shift cannot differentiate broadcast parameters (#4462)
    inputs = torch.tensor(inputs_np, requires_grad=diff_method == "best")
    with expect_backend(dev, case) as tracker:
        with torch.no_grad():
            layer(inputs)
        forward = sum(v for k, v in tracker.totals.items() if k.startswith("executions:"))
        out = layer(inputs)
        torch.sum(torch.tensor(cotangent) * out).backward()
    assert forward == BATCH  # every sample of the batch ran, once

    ref = reference(qfunc, wires)

    def loss(inp, w):
        return pnp.sum(cotangent * pnp.stack(ref(inp, w), axis=-1))

    expected_out = np.stack(ref(inputs_np, problem.weights), axis=-1)
    args = pnp.array(inputs_np, requires_grad=True), pnp.array(problem.weights, requires_grad=True)
    d_inputs, d_weights = qml.grad(loss)(*args)
    tol = tolerance_for(dev)
    assert_results_close(out, expected_out, tol.values, interface="torch")
    assert_results_close(layer.qnode_weights["weights"].grad, d_weights, tol.derivatives)
    if inputs.requires_grad:
        assert_results_close(inputs.grad, d_inputs, tol.derivatives, interface="torch")


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("kind", ["expvals", "mixed"])
def test_broadcast_autograd(make_router, case, kind):
    """Broadcast inputs with every measurement type: shapes ``(batch, ...)`` and the
    Jacobian with respect to the (unbroadcast) weights."""
    problem = Problem.make(1)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    qfunc = getattr(problem, kind)
    inputs = pnp.array(
        np.random.default_rng(5).uniform(-np.pi, np.pi, (BATCH, wires)), requires_grad=False
    )
    x = pnp.array(problem.weights, requires_grad=True)
    qnode = qml.QNode(qfunc, dev, diff_method="best")
    ref = reference(qfunc, wires)

    def rows(qn):
        """Each measurement as (batch, -1), side by side: one row per sample."""
        return lambda w: qml.math.concatenate(
            [qml.math.reshape(r, (BATCH, -1)) for r in qn(w, inputs)], axis=1
        )

    with expect_backend(dev, case):
        result = qnode(problem.weights, inputs)
        jac = qml.jacobian(rows(qnode))(x)
    tol = tolerance_for(dev)
    assert_results_close(result, ref(problem.weights, inputs), tol.values)
    assert_results_close(jac, qml.jacobian(rows(ref))(x), tol.derivatives)


# ----------------------------------------------------- several tapes in one batch


def _first_expval(problem: Problem):
    """Quantum function: one expectation value (a scalar result)."""

    def qfunc(weights):
        problem.circuit.apply(weights)
        return qml.expval(problem.observables[1])

    return qfunc


def _batch_of_structures(gradient: str) -> list[tuple[Callable, int]]:
    """Quantum functions of three structures on different wire subsets of 4 wires,
    in the order A B A C B, with their weight counts."""
    a = Problem.make(10, wires=[0, 1, 2])
    b = Problem.make(11, wires=[3, 1])  # a subset of the device wires, out of order
    c = Problem.make(12, wires=[2, 0, 3, 1])
    if gradient == "device":  # expectation values only
        funcs = [a.expvals, _first_expval(b), c.expvals]
    else:
        funcs = [a.expvals, b.probs, c.mixed]
    sizes = [p.circuit.num_weights for p in (a, b, c)]
    return [(funcs[i], sizes[i]) for i in (0, 1, 0, 2, 1)]


def _execute_batch(structures, dev, theta, diff_method):
    """Build one tape per structure from consecutive slices of ``theta``, execute them
    in one ``qml.execute`` call, and flatten all results."""
    tapes, start = [], 0
    for qfunc, size in structures:
        tapes.append(qml.tape.make_qscript(qfunc)(theta[start : start + size]))
        start += size
    return flatten(qml.execute(tapes, dev, diff_method=diff_method))


@functools.cache
def _batch_reference(gradient: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights, flat results and Jacobian of the batch on default.qubit (backprop)."""
    structures = _batch_of_structures(gradient)
    theta = np.random.default_rng(9).uniform(-np.pi, np.pi, sum(s for _, s in structures))
    dev = qml.device("default.qubit", wires=4)
    values = _execute_batch(structures, dev, theta, "backprop")
    x = pnp.array(theta, requires_grad=True)
    jac = qml.jacobian(lambda t: _execute_batch(structures, dev, t, "backprop"))(x)
    return theta, np.asarray(values), np.asarray(jac)


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("interface", ["autograd", "torch"])
@pytest.mark.parametrize("gradient", ["device", "parameter-shift"])
def test_execute_batch_of_structures(make_router, case, interface, gradient):
    """Five tapes of three structures in one batch: grouped once per structure, results
    and derivatives put back in batch order.

    With the device gradient the whole Jacobian is compared. With parameter shift
    every output's backward pass would shift every tape again, so one backward pass
    of a random weighted sum (a VJP with dense random weights, which any misplaced
    or wrong Jacobian entry changes) keeps the test fast.
    """
    structures = _batch_of_structures(gradient)
    theta, expected, expected_jac = _batch_reference(gradient)
    dev = make_router(case, 4)
    diff_method = "device" if gradient == "device" else qml.gradients.param_shift

    with expect_backend(dev, case):
        values = _execute_batch(structures, dev, theta, None)
    runs = dev.routing_report().recent
    # one routed group per structure, in order of first appearance, with every tape
    assert [run.circuits for run in runs] == [2, 2, 1], dev.routing_report()
    tol = tolerance_for(dev)
    assert_results_close(values, expected, tol.values)

    def run(t):
        return _execute_batch(structures, dev, t, diff_method)

    cotangent = np.random.default_rng(4).normal(size=len(expected))
    with expect_backend(dev, case):
        if interface == "autograd":
            x = pnp.array(theta, requires_grad=True)
            if gradient == "device":
                derivative = qml.jacobian(run)(x)
            else:
                derivative = qml.grad(lambda t: pnp.dot(cotangent, run(t)))(x)
        else:
            torch = pytest.importorskip("torch")
            x = torch.tensor(theta, requires_grad=True)
            if gradient == "device":
                derivative = torch.autograd.functional.jacobian(run, x)
            else:
                torch.dot(torch.tensor(cotangent), run(x)).backward()
                derivative = x.grad
    if gradient == "device":
        assert_results_close(derivative, expected_jac, tol.derivatives)
        assert derivative_tasks(dev), dev.routing_report()
    else:
        assert_results_close(derivative, cotangent @ expected_jac, tol.derivatives)


# ------------------------------------------------------------------- wire labels

DEVICE_WIRES = ["anc", "q1", "q0", "x", "out"]
USED_WIRES = ["q0", "out", "q1"]  # a subset, not in device order


@pytest.mark.parametrize("case", ROUTER_CASES)
@pytest.mark.parametrize("kind", ["expvals", "mixed", "state", "probs"])
def test_string_wire_labels_on_a_subset_of_the_device(make_router, case, kind):
    """String wire labels, a circuit on three of five device wires: values (probs() and
    state() cover all device wires) and, where real-valued, the Jacobian."""
    problem = Problem.make(4, wires=USED_WIRES)
    dev = make_router(case, DEVICE_WIRES)
    qfunc = getattr(problem, kind)
    qnode = qml.QNode(qfunc, dev, diff_method="best")
    x = pnp.array(problem.weights, requires_grad=True)
    with expect_backend(dev, case):
        result = qnode(problem.weights)
        jac = None if kind == "state" else qml.jacobian(lambda w: flatten(qnode(w)))(x)
    tol = tolerance_for(dev)
    assert_results_close(result, reference(qfunc, DEVICE_WIRES)(problem.weights), tol.values)
    if jac is not None:
        expected = flat_jacobian(reference_jacobian(qfunc, DEVICE_WIRES, x), len(x))
        assert_results_close(jac, expected, tol.derivatives)


# ------------------------------------------------------------------- finite shots

SHOTS = 20_000
# Results are compared with exact values within five standard deviations of the
# shot noise. The router is seeded, so each run is reproducible; five sigma means a
# correct router fails for a given seed with probability ~1e-6 per number.
SIGMAS = 5.0


def shot_bounds(problem: Problem) -> np.ndarray:
    """Per-expval bound on the standard deviation of one shot (|eigenvalues| bound)."""
    return np.array([observable_scale(obs) for obs in problem.observables])


@pytest.mark.parametrize("case", ROUTER_CASES)
def test_finite_shots_values_and_parameter_shift_jacobian(make_router, case):
    """Sampled expvals, probs and var; Jacobians by PennyLane's parameter shift with
    shots running through the router."""
    problem = Problem.make(1)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires, seed=1234)
    expvals = qml.set_shots(qml.QNode(problem.expvals, dev, diff_method="best"), shots=SHOTS)
    mixed = qml.set_shots(qml.QNode(problem.mixed, dev), shots=SHOTS)
    x = pnp.array(problem.weights, requires_grad=True)
    with expect_backend(dev, case) as tracker:
        values = expvals(problem.weights)
        sampled_mixed = mixed(problem.weights)
        jac = qml.jacobian(lambda w: qml.math.stack(expvals(w)))(x)
    assert tracker.totals["shots"] >= SHOTS
    assert not derivative_tasks(dev)  # with shots, PennyLane shifts

    noise = SIGMAS / np.sqrt(SHOTS)
    scale = shot_bounds(problem)
    exact = np.array(reference(problem.expvals, wires)(problem.weights))
    assert_results_close(values, tuple(exact), 1.0)  # structure and shapes
    assert np.all(np.abs(np.array(values) - exact) <= noise * scale), (values, exact)

    exact_mixed = reference(problem.mixed, wires)(problem.weights)
    assert_results_close(sampled_mixed, exact_mixed, 2.0)  # structure and shapes
    probs_noise = noise * 0.5  # a probability estimate has std <= 0.5/sqrt(shots)
    assert np.allclose(sampled_mixed[0], exact_mixed[0], atol=probs_noise, rtol=0)
    assert np.allclose(sampled_mixed[3], exact_mixed[3], atol=probs_noise, rtol=0)
    # var of a Pauli word: 1 - <P>^2 estimated from the mean, std <= 2/sqrt(shots)
    assert abs(sampled_mixed[1] - exact_mixed[1]) <= 2 * noise
    assert abs(sampled_mixed[2] - exact_mixed[2]) <= noise * scale[1]

    # each occurrence of a weight adds a shift rule whose |coefficients| sum to 1
    occurrences = np.zeros(problem.circuit.num_weights)
    for gate in problem.circuit.gates:
        for kind, value in gate.params:
            if kind == "w":
                occurrences[value] += 1
    exact_jac = flat_jacobian(reference_jacobian(problem.expvals, wires, x), len(x))
    bound = noise * np.outer(scale, occurrences)
    assert jac.shape == exact_jac.shape
    assert np.all(np.abs(jac - exact_jac) <= bound), np.max(np.abs(jac - exact_jac) / bound)


@pytest.mark.parametrize("case", ROUTER_CASES)
def test_shot_vector(make_router, case):
    """A shot vector: one result per shot group, each within its own shot noise."""
    problem = Problem.make(0)
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires, seed=99)
    shots = (2000, 8000, 8000)
    qnode = qml.set_shots(qml.QNode(problem.mixed, dev), shots=shots)
    with expect_backend(dev, case):
        result = qnode(problem.weights)
    exact = reference(problem.mixed, wires)(problem.weights)
    assert isinstance(result, tuple) and len(result) == len(shots)
    for group, n in zip(result, shots):
        assert_results_close(group, exact, 2.0)  # structure and shapes per shot group
        noise = SIGMAS / np.sqrt(n)
        assert np.allclose(group[0], exact[0], atol=0.5 * noise, rtol=0)
        assert abs(group[2] - exact[2]) <= noise * observable_scale(problem.observables[1])
    assert not np.allclose(result[1][0], result[2][0], atol=0, rtol=0)  # independent groups


# ---------------------------------------------------------------------- precision


def _wide_problem() -> Problem:
    """A 12-qubit circuit: wide enough that complex64 is clearly faster, so that with
    precision="single" the router picks it and "double" has something to refuse."""
    return Problem.make(21, wires=range(12))


@pytest.mark.parametrize("precision", ["double", "single"])
def test_precision_double_never_picks_complex64(make_router, precision):
    """precision="double" keeps every group on complex128 backends (auto plus a
    complex64 lightning); "single" picks complex64 for the same work."""
    case = RouterCase({"backends": ["auto", LIGHTNING_C64], "precision": precision}, None)
    problem = _wide_problem()
    wires = len(problem.circuit.wires)
    dev = make_router(case, wires)
    dtypes = {spec.name: spec.capabilities.dtype for spec in dev.backends}
    assert "complex64" in dtypes.values()
    x = pnp.array(problem.weights, requires_grad=True)
    with expect_backend(dev, case) as tracker:
        values = qml.QNode(problem.expvals, dev)(problem.weights)
        jac = qml.jacobian(lambda w: qml.math.stack(qml.QNode(problem.expvals, dev)(w)))(x)
        qml.set_shots(qml.QNode(problem.probs, dev), shots=100)(problem.weights)
    used = set(tracker.history["backend"]) | set(dev.routing_report().totals)
    used_dtypes = {dtypes[name] for name in used}
    if precision == "double":
        assert used_dtypes == {"complex128"}, used
        assert tolerance_for(dev) is DOUBLE
        assert_results_close(values, reference(problem.expvals, wires)(problem.weights), 1e-9)
        expected = flat_jacobian(reference_jacobian(problem.expvals, wires, x), len(x))
        assert_results_close(jac, expected, DOUBLE.derivatives)
    else:
        # without this, the "double" case would prove nothing
        assert "complex64" in used_dtypes, dev.routing_report()


def test_precision_double_refuses_a_complex64_only_router(make_router):
    """With only complex64 backends, precision="double" refuses rather than runs."""
    case = RouterCase({"backends": [LIGHTNING_C64], "precision": "double"}, None)
    dev = make_router(case, 2)
    problem = Problem.make(0)
    with pytest.raises(UnsupportedCircuitError, match="below the requested double precision"):
        qml.QNode(problem.expvals, dev)(problem.weights)
    assert not dev.routing_report().totals


# -------------------------------------------------------------------- regressions
# Minimal reproductions of router bugs found by this suite (fixed; see git log).


def test_regression_fixed_rot_after_trainable_gate_adjoint(make_router):
    """default.qubit's adjoint_jacobian miscounts parameters of a fixed Rot."""
    case = RouterCase({"backends": ["default.qubit"]}, "default.qubit")
    dev = make_router(case, 2)

    def circuit(x):
        qml.IsingXX(0.4, wires=[1, 0])
        qml.CRX(x, wires=[0, 1])
        qml.Rot(0.1, 0.2, 0.3, wires=1)
        return qml.expval(qml.Z(1))

    x = pnp.array(0.7, requires_grad=True)
    grad = qml.grad(qml.QNode(circuit, dev, diff_method="adjoint"))(x)
    expected = qml.grad(reference(circuit, 2))(x)
    assert np.isclose(grad, expected, atol=1e-12, rtol=0) and abs(expected) > 1e-3


def test_regression_state_forward_on_lightning(make_router):
    """A state QNode with "best" on lightning alone: forward pass and parameter shift."""
    case = RouterCase({"backends": ["lightning.qubit"]}, "lightning.qubit")
    dev = make_router(case, 1)

    def circuit(x):
        qml.RY(x, 0)
        return qml.state()

    with expect_backend(dev, case):
        state = qml.QNode(circuit, dev)(0.3)
    assert_results_close(state, reference(circuit, 1)(0.3), DOUBLE.values)


def test_regression_torch_float64_from_lightning(make_router):
    """lightning's Python-float results must not become float32 torch tensors."""
    torch = pytest.importorskip("torch")
    case = RouterCase({"backends": ["lightning.qubit"]}, "lightning.qubit")
    dev = make_router(case, 1)

    def circuit(x):
        qml.RY(x, 0)
        return qml.expval(qml.Z(0))

    result = qml.QNode(circuit, dev)(torch.tensor(0.3, dtype=torch.float64))
    assert result.dtype == torch.float64
