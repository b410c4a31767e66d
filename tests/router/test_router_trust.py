"""No silent wrong derivatives: ``qstore.router`` against ``default.qubit`` (issue 16, 2-3).

Each case either equals default.qubit (analytic values, in the interfaces named) or
raises an error that names the fix: finite differences in single precision, trainable
observable coefficients, second derivatives, frameworks differentiating a direct
``execute``, complex trainable parameters, the global random generator,
``diff_method="backprop"``, adjoint ``var`` with ``probs``, and one-shot mid-circuit
measurements on backends that cannot run them.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from qstore_pl.exceptions import UnsupportedCircuitError

ROUTER = "qstore.router"
REFERENCE = "default.qubit"
X = np.array([0.3, -0.7])


def circuit(x):
    qml.RX(x[0], 0)
    qml.RY(x[1], 1)
    qml.CNOT([0, 1])
    qml.RZ(x[0] * x[1], 1)
    qml.RX(0.4, 1)
    return qml.expval(qml.Z(1))


def qnodes(wires=2, router=None, qfunc=circuit, **qnode_kwargs):
    """The same QNode on default.qubit and on a router built with ``router`` options."""
    reference = qml.QNode(qfunc, qml.device(REFERENCE, wires=wires), **qnode_kwargs)
    dev = qml.device(ROUTER, wires=wires, **(router or {}))
    return reference, qml.QNode(qfunc, dev, **qnode_kwargs), dev


def backends_run(dev) -> set[str]:
    return {run.backend for run in dev.routing_report().recent}


# ------------------------------------------------- 1. value-differencing gradients


@pytest.mark.parametrize("method", ["finite-diff", "spsa"])
def test_differencing_gradients_run_in_double_precision(method):
    """At the default ``precision="single"`` the router would pick complex64 backends:
    their rounding divided by the step gave O(1) gradient errors."""
    kwargs = {"diff_method": method}
    if method == "spsa":
        kwargs["gradient_kwargs"] = {"num_directions": 4, "sampler_rng": 11}
    reference, routed, dev = qnodes(**kwargs)
    x = pnp.array(X, requires_grad=True)
    expected = qml.grad(reference)(x)
    got = qml.grad(routed)(x)  # SPSA: the same seeded directions
    assert np.allclose(got, expected, atol=1e-6, rtol=0)
    singles = {s.name for s in dev.backends if s.capabilities.precision == "single"}
    assert backends_run(dev) and not backends_run(dev) & singles


def test_finite_diff_torch_matches_default_qubit():
    torch = pytest.importorskip("torch")
    reference, routed, _ = qnodes(diff_method="finite-diff")
    grads = []
    for qnode in (reference, routed):
        x = torch.tensor(X, requires_grad=True, dtype=torch.float64)
        qnode(x).backward()
        grads.append(x.grad.numpy())
    assert np.allclose(grads[1], grads[0], atol=1e-6, rtol=0)


def test_finite_diff_without_double_backend_raises_with_fix():
    _, routed, dev = qnodes(
        router={
            "backends": [
                {"name": "c64", "type": "qstore.batched", "options": {"c_dtype": "complex64"}}
            ]
        },
        diff_method="finite-diff",
    )
    x = pnp.array(X, requires_grad=True)
    with pytest.raises(UnsupportedCircuitError, match=r"complex128.*parameter-shift"):
        qml.grad(routed)(x)
    with pytest.raises(UnsupportedCircuitError, match="finite differences need complex128"):
        dev.explain(routed, x)


def test_parameter_shift_may_stay_single_precision():
    """Parameter shifts difference nothing small: complex64 backends stay eligible."""
    reference, routed, dev = qnodes(diff_method="parameter-shift")
    x = pnp.array(X, requires_grad=True)
    assert np.allclose(qml.grad(routed)(x), qml.grad(reference)(x), atol=1e-5, rtol=0)
    decision = dev.explain(routed, x).decisions[0]
    noise_only = "kept for circuits with noise"
    pure = [c for c in decision.candidates if noise_only not in " ".join(c.reasons)]
    assert all(c.eligible for c in pure)
    assert any(c.precision == "single" for c in pure)


# ------------------------------------------ 2. trainable observable coefficients


def hamiltonian(w, k):
    qml.RX(w, 0)
    qml.CNOT([0, 1])
    qml.RY(0.3, 1)
    return qml.expval(qml.dot(k, [qml.Z(0), qml.X(1), qml.Z(0) @ qml.Z(1)]))


def hamiltonian_state(w):
    qml.RX(w, 0)
    qml.CNOT([0, 1])
    qml.RY(0.3, 1)
    return qml.state()


W, K = 0.4, np.array([0.5, 0.7, -0.2])


@pytest.mark.parametrize("backends", ["auto", ["lightning.qubit"]], ids=["auto", "no-backprop"])
def test_trainable_coefficients_autograd(backends):
    """Default diff_method: backpropagation on default.qubit, or PennyLane's parameter
    shift through the router when no backend backpropagates."""
    reference, routed, _ = qnodes(router={"backends": backends}, qfunc=hamiltonian)
    w, k = pnp.array(W, requires_grad=True), pnp.array(K, requires_grad=True)
    expected = qml.grad(reference)(w, k)
    got = qml.grad(routed)(w, k)
    for g, e in zip(got, expected):
        assert np.allclose(g, e, atol=1e-10, rtol=0)
    # d<sum k_i O_i>/dk_i = <O_i>
    state = qml.QNode(hamiltonian_state, qml.device(REFERENCE, wires=2))(W)
    terms = [qml.Z(0), qml.X(1), qml.Z(0) @ qml.Z(1)]
    values = [np.vdot(state, qml.matrix(o, wire_order=[0, 1]) @ state).real for o in terms]
    assert np.allclose(expected[1], values, atol=1e-12)


def test_trainable_coefficients_torch():
    torch = pytest.importorskip("torch")
    reference, routed, _ = qnodes(qfunc=hamiltonian)
    grads = []
    for qnode in (reference, routed):
        w = torch.tensor(W, requires_grad=True, dtype=torch.float64)
        k = torch.tensor(K, requires_grad=True, dtype=torch.float64)
        qnode(w, k).backward()
        grads.append((w.grad.item(), k.grad.numpy()))
    assert np.isclose(grads[1][0], grads[0][0], atol=1e-10)
    assert np.allclose(grads[1][1], grads[0][1], atol=1e-10)


@pytest.mark.parametrize("jit", [False, True], ids=["jax", "jax-jit"])
def test_trainable_coefficients_jax(jit):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    reference, routed, _ = qnodes(qfunc=hamiltonian)
    grads = []
    for qnode in (reference, routed):
        grad = jax.grad(qnode, argnums=(0, 1))
        grad = jax.jit(grad) if jit else grad
        grads.append(grad(jax.numpy.array(W), jax.numpy.array(K)))
    for g, e in zip(grads[1], grads[0]):
        assert np.allclose(g, e, atol=1e-10, rtol=0)


# --------------------------------------------------------- 3. second derivatives


@pytest.mark.parametrize("backends", ["auto", ["lightning.qubit"]], ids=["auto", "no-backprop"])
def test_hessian_autograd(backends):
    reference, routed, _ = qnodes(router={"backends": backends}, max_diff=2)
    x = pnp.array(X, requires_grad=True)
    expected = qml.jacobian(qml.grad(reference))(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Output seems independent of input"
        got = qml.jacobian(qml.grad(routed))(x)
    assert np.abs(expected).max() > 0.1
    assert np.allclose(got, expected, atol=1e-8, rtol=0)


def test_hessian_torch():
    torch = pytest.importorskip("torch")
    reference, routed, _ = qnodes(max_diff=2)
    x = torch.tensor(X, dtype=torch.float64)
    expected = torch.autograd.functional.hessian(reference, x)
    got = torch.autograd.functional.hessian(routed, x)
    assert torch.allclose(got, expected, atol=1e-8)


@pytest.mark.parametrize(("transform", "max_diff"), [("hessian", 2), ("jacfwd", 2), ("jacfwd", 1)])
def test_jax_second_and_forward_mode_derivatives(transform, max_diff):
    """Forward mode works at the default ``max_diff=1`` too: a one-measurement circuit
    takes device Jacobians under JAX, not a custom VJP (which refuses forward mode)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    reference, routed, _ = qnodes(max_diff=max_diff)
    x = jax.numpy.array(X)
    fn = getattr(jax, transform)
    assert np.allclose(fn(routed)(x), fn(reference)(x), atol=1e-8, rtol=0)


# ------------------------------------ 4. a framework differentiating dev.execute


def _direct(dev, x):
    tape = qml.tape.QuantumScript(
        [qml.RX(x, 0), qml.CNOT([0, 1]), qml.RY(0.2, 1)], [qml.expval(qml.Z(1))]
    )
    return dev.execute(tape)


def test_autograd_through_direct_execute():
    ref, dev = qml.device(REFERENCE, wires=2), qml.device(ROUTER, wires=2)
    x = pnp.array(0.3, requires_grad=True)
    expected = qml.grad(lambda v: _direct(ref, v))(x)
    assert np.isclose(qml.grad(lambda v: _direct(dev, v))(x), expected, atol=1e-12)
    assert expected == pytest.approx(-np.sin(0.3) * np.cos(0.2))
    assert backends_run(dev) == {"default.qubit"}


def test_torch_and_jax_through_direct_execute():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    dev = qml.device(ROUTER, wires=2)
    expected = -np.sin(0.3) * np.cos(0.2)
    x = torch.tensor(0.3, requires_grad=True, dtype=torch.float64)
    _direct(dev, x).backward()
    assert x.grad.item() == pytest.approx(expected, abs=1e-12)
    assert jax.grad(lambda v: _direct(dev, v))(0.3) == pytest.approx(expected, abs=1e-12)
    assert jax.jit(jax.grad(lambda v: _direct(dev, v)))(0.3) == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------- 5. complex trainable parameters


def test_jax_complex_trainable_parameter_raises_with_fix():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)

    def qfunc(x):
        qml.RX(x, 0)
        return qml.expval(qml.Z(0))

    reference, routed, _ = qnodes(wires=1, qfunc=qfunc, diff_method="adjoint")
    z = jax.numpy.array(0.3 + 0j)
    assert routed(z) == pytest.approx(float(reference(z)), abs=1e-12)  # forward is fine
    with pytest.raises(Exception, match=r"complex.*jnp.real"):
        jax.grad(lambda v: jax.numpy.real(routed(v)))(z)


# ----------------------------------------------------------- 6. global generator


def test_router_leaves_numpy_global_generator_alone():
    """A seeded script draws the same numbers with or without building (and using) a
    router; a fresh interpreter, since backend probing happens once per process."""
    script = textwrap.dedent(
        """
        import numpy as np, pennylane as qml
        np.random.seed(0)
        expected = np.random.rand(3)
        np.random.seed(0)
        dev = qml.device("qstore.router", wires=2)
        qml.QNode(lambda: qml.expval(qml.Z(0)), dev)()
        print(np.array_equal(np.random.rand(3), expected))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr


# ------------------------------------------------------------ section 3: backprop


@pytest.mark.parametrize("interface", ["autograd", "torch", "jax", "jax-jit", "tensorflow"])
def test_backprop_routes_to_default_qubit(interface):
    reference, routed, dev = qnodes(diff_method="backprop")
    if interface == "autograd":
        x = pnp.array(X, requires_grad=True)
        expected, got = qml.grad(reference)(x), qml.grad(routed)(x)
    elif interface == "torch":
        torch = pytest.importorskip("torch")
        grads = []
        for qnode in (reference, routed):
            x = torch.tensor(X, requires_grad=True, dtype=torch.float64)
            qnode(x).backward()
            grads.append(x.grad.numpy())
        expected, got = grads
    elif interface.startswith("jax"):
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        wrap = jax.jit if interface == "jax-jit" else (lambda f: f)
        x = jax.numpy.array(X)
        expected, got = wrap(jax.grad(reference))(x), wrap(jax.grad(routed))(x)
    else:
        tf = pytest.importorskip("tensorflow")
        grads = []
        for qnode in (reference, routed):
            x = tf.Variable(X, dtype=tf.float64)
            with tf.GradientTape() as tape:
                out = qnode(x)
            grads.append(tape.gradient(out, x).numpy())
        expected, got = grads
    assert np.allclose(got, expected, atol=1e-12, rtol=0)
    assert backends_run(dev) == {"default.qubit"}


def test_backprop_is_explained():
    _, routed, dev = qnodes(diff_method="backprop")
    explanation = dev.explain(routed, pnp.array(X, requires_grad=True))
    decision = explanation.decisions[0]
    assert decision.backend == "default.qubit" and decision.derivative_method == "backprop"
    assert "cannot backpropagate" in str(explanation)


def test_backprop_without_a_backprop_backend_raises_with_fix():
    """At once, when the QNode is built (as PennyLane does for any device without it)."""
    dev = qml.device(ROUTER, wires=2, backends=["lightning.qubit"])
    with pytest.raises(UnsupportedCircuitError, match=r"add 'default\.qubit'"):
        qml.QNode(circuit, dev, diff_method="backprop")


# ------------------------------------------------- section 3: adjoint var + probs


def var_and_probs(x):
    qml.RX(x[0], 0)
    qml.RY(x[1], 1)
    qml.CNOT([0, 1])
    return qml.var(qml.Z(1)), qml.probs(wires=[0])


def test_adjoint_var_with_probs_autograd():
    reference, routed, _ = qnodes(qfunc=var_and_probs, diff_method="adjoint")
    x = pnp.array(X, requires_grad=True)

    def stacked(qnode):
        return qml.jacobian(lambda v: qml.math.hstack(qnode(v)))(x)

    assert np.allclose(stacked(routed), stacked(reference), atol=1e-10, rtol=0)


def test_adjoint_var_with_probs_torch():
    torch = pytest.importorskip("torch")
    reference, routed, _ = qnodes(qfunc=var_and_probs, diff_method="adjoint")
    x = torch.tensor(X, dtype=torch.float64)
    jacobians = [
        torch.autograd.functional.jacobian(lambda v, q=q: torch.hstack(q(v)), x)
        for q in (reference, routed)
    ]
    assert torch.allclose(jacobians[1], jacobians[0], atol=1e-10)


# ---------------------------------------- section 3: one-shot mid-circuit measurements


def test_one_shot_mcm_goes_straight_to_a_capable_backend(caplog):
    """qsim and the batched engine defer measurements only: they were tried first and
    failed on every call ("trying the next" per backend)."""

    def qfunc(x):
        qml.RX(x, 0)
        qml.RX(np.pi, 1)
        m = qml.measure(1)
        qml.cond(m, qml.X)(2)
        qml.CNOT([2, 3])
        return qml.expval(qml.Z(3)), qml.expval(m)

    reference, routed, dev = qnodes(wires=4, qfunc=qfunc, mcm_method="one-shot")
    reference, routed = (qml.set_shots(q, shots=50) for q in (reference, routed))
    x = np.array([0.1, 0.2, 0.3])  # broadcast: the batched engine and qsim ranked first
    with caplog.at_level(logging.WARNING, logger="qstore_pl"):
        for _ in range(2):
            got = routed(x)
    assert not [r for r in caplog.records if "trying the next" in r.getMessage()]
    assert np.allclose(got, reference(x))  # deterministic: m = 1, wire 3 flipped
    assert np.allclose(got, [[-1.0] * 3, [1.0] * 3])
    assert all(not run.failed for run in dev.routing_report().recent)
    decision = dev.explain(routed, x).decisions[0]
    ineligible = {c.backend for c in decision.candidates if not c.eligible}
    assert {"qstore.qsim", "qstore.batched"} <= ineligible


def test_jax_jacobian_of_probs_on_a_parameter_shift_backend():
    """``jax.jacobian`` with device VJPs batches the cotangents of probabilities too;
    qsim (parameter shift) took them as one cotangent and failed."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)

    def qfunc(x):
        qml.RX(x[0], 0)
        qml.RY(x[1], 1)
        qml.CNOT([0, 1])
        return qml.probs(wires=[0, 1]), qml.expval(qml.Z(0))

    reference, routed, dev = qnodes(router={"backends": ["qstore.qsim"]}, qfunc=qfunc)
    x = jax.numpy.array(X)
    for got, expected in zip(jax.jacobian(routed)(x), jax.jacobian(reference)(x)):
        assert np.allclose(got, expected, atol=1e-5, rtol=0)  # complex64 simulation
    assert backends_run(dev) == {"qstore.qsim"}
