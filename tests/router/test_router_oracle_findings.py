"""Cases PennyLane's own test files (scripts/pennylane_oracle.py) found the router
failing where default.qubit gives a value: each must now equal default.qubit."""

import jax
import numpy as np
import pennylane as qml
import pytest

import qstore_pl.exceptions
from qstore_pl.router.preprocessing.differentiation import FirstOrderDerivativeWarning


def _mcm_circuit(device_name: str, measure):
    dev = qml.device(device_name, wires=3)

    @qml.qnode(dev)
    def circuit(x, y):
        qml.Hadamard(1)
        qml.RY(x, 0)
        m0 = qml.measure(0)
        qml.cond(m0, qml.RY)(y, wires=1)
        return qml.expval(qml.PauliZ(1)), measure(m0)

    return circuit


@pytest.mark.parametrize("device_name", ["qstore.router", "qstore.batched"])
@pytest.mark.parametrize("measure", [qml.expval, qml.var], ids=["expval", "var"])
def test_statistics_of_a_mid_circuit_measurement_value_equal_default_qubit(device_name, measure):
    x, y = 0.4, 1.1
    expected = _mcm_circuit("default.qubit", measure)(x, y)
    got = _mcm_circuit(device_name, measure)(x, y)
    # P(m0 = 1) = sin^2(x/2): an analytic anchor besides default.qubit
    p1 = np.sin(x / 2) ** 2
    assert np.allclose(expected[1], p1 if measure is qml.expval else p1 * (1 - p1))
    assert np.allclose(got, expected, atol=1e-6)


def test_a_jax_prng_key_seeds_the_router_as_it_seeds_default_qubit():
    key = jax.random.PRNGKey(7)
    dev = qml.device("qstore.router", wires=1, seed=key)

    @qml.qnode(dev, shots=200)
    def circuit():
        qml.Hadamard(0)
        return qml.sample(qml.PauliZ(0))

    first = circuit()
    again = qml.QNode(circuit.func, qml.device("qstore.router", wires=1, seed=key), shots=200)()
    assert set(np.unique(first)) <= {-1, 1}
    assert np.array_equal(first, again)  # the same key draws the same samples


def _conditional_rotation(device_name: str, interface: str):
    """A rotation conditioned on a measurement, which parameter shift differentiates by
    finite differences (``Conditional.grad_method == "F"``)."""
    dev = qml.device(device_name, wires=3)

    @qml.qnode(dev, interface=interface, diff_method="parameter-shift")
    def circuit(x):
        qml.Hadamard(1)
        qml.RY(1.234, wires=0)
        m0 = qml.measure(0)
        qml.cond(m0, qml.RY)(x, wires=1)
        return qml.expval(qml.PauliZ(1))

    return circuit


@pytest.mark.parametrize("interface", ["autograd", "torch", "jax"])
def test_parameter_shift_falling_back_to_finite_differences_runs_in_double(interface):
    # in single precision the finite-difference fallback gave -0.4747 for -0.2657
    x = -0.654
    # analytic: wire 1 starts in |+>, so <Z1> = -P(m0=1) sin(x)
    p1 = np.sin(1.234 / 2) ** 2
    expected = -p1 * np.cos(x)
    grads = {}
    for name in ("default.qubit", "qstore.router"):
        circuit = _conditional_rotation(name, interface)
        if interface == "torch":
            import torch

            t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            circuit(t).backward()
            grads[name] = float(t.grad)
        elif interface == "jax":
            # float64, as PennyLane's suite runs JAX: in float32 default.qubit's own
            # finite differences are off by 0.05
            previous = jax.config.jax_enable_x64
            jax.config.update("jax_enable_x64", True)
            try:
                grads[name] = float(jax.grad(circuit)(jax.numpy.array(x)))
            finally:
                jax.config.update("jax_enable_x64", previous)
        else:
            grads[name] = float(qml.grad(circuit)(qml.numpy.array(x, requires_grad=True)))
    assert np.isclose(grads["default.qubit"], expected, atol=1e-6)
    assert np.isclose(grads["qstore.router"], expected, atol=1e-6)


def test_postselection_under_jax_jit_fills_the_shots_as_default_qubit_does():
    def postselected(device_name):
        dev = qml.device(device_name, wires=2, seed=jax.random.PRNGKey(3))

        @qml.set_shots(100)
        @qml.qnode(dev, mcm_method="deferred")
        def f(x):
            qml.RX(x, 0)
            qml.measure(0, postselect=1)
            return qml.sample(wires=0)

        return f

    for name in ("default.qubit", "qstore.router"):
        f = postselected(name)
        eager = f(jax.numpy.array(np.pi / 2))
        jitted = jax.jit(f)(jax.numpy.array(np.pi / 2))
        assert len(eager) < 100, name  # hardware-like: the rejected shots are dropped
        assert len(jitted) == 100, name  # under jit PennyLane asks for "fill-shots"
        assert np.all(np.asarray(jitted) == 1), name


def _expval_and_probs(device_name: str, diff_method: str):
    @qml.qnode(qml.device(device_name, wires=2), diff_method=diff_method)
    def circuit(x, y):
        qml.RX(x, wires=0)
        qml.RY(y, wires=1)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.PauliZ(0)), qml.probs(wires=[1])

    return circuit


@pytest.fixture
def jax_x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("transform", [jax.jacfwd, jax.jacrev], ids=["jacfwd", "jacrev"])
def test_forward_mode_jax_jacobian_of_several_measurements(jax_x64, transform):
    # device VJPs (a custom_vjp) made jax.jacfwd raise for circuits with two measurements
    x, y = jax.numpy.array(0.543), jax.numpy.array(-0.654)
    expected = transform(_expval_and_probs("default.qubit", "adjoint"), argnums=(0, 1))(x, y)
    got = transform(_expval_and_probs("qstore.router", "adjoint"), argnums=(0, 1))(x, y)
    # analytic anchor: d<Z0>/dx = -sin x
    assert np.isclose(expected[0][0], -np.sin(0.543))
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        assert np.allclose(g, e, atol=1e-6)


def test_complex_traced_parameter_is_backpropagated_under_best_and_refused_by_adjoint(jax_x64):
    x, y = jax.numpy.array(0.543 + 0j), jax.numpy.array(-0.654 + 0j)
    expected = jax.jacobian(_expval_and_probs("default.qubit", "best"), argnums=0)(x, y)
    got = jax.jacobian(_expval_and_probs("qstore.router", "best"), argnums=0)(x, y)
    assert np.isclose(got[0], -np.sin(0.543))
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        assert np.allclose(g, e, atol=1e-6)
    with pytest.raises(qstore_pl.exceptions.InvalidParameterError, match=r"RX.*complex.*jnp.real"):
        jax.jacobian(_expval_and_probs("qstore.router", "adjoint"), argnums=0)(x, y)


def test_backprop_of_a_sparse_hamiltonian_is_refused_as_default_qubit_refuses_it():
    from scipy.sparse import csr_matrix

    @qml.qnode(qml.device("qstore.router", wires=2), diff_method="backprop")
    def circuit(param):
        qml.RX(param, wires=0)
        return qml.expval(qml.SparseHamiltonian(csr_matrix(np.eye(4)), [0, 1]))

    # PennyLane's own message, raised before anything runs (was a TypeError inside RX)
    with pytest.raises(qml.exceptions.QuantumFunctionError, match="does not support backprop"):
        qml.grad(circuit, argnums=0)(qml.numpy.array([0.5]))


def test_finite_difference_tapes_run_directly_are_run_in_double_precision():
    # qml.gradients.finite_diff's tapes through dev.execute(tapes), as PennyLane's
    # gradient tests do: in complex64 the step's differences were swamped
    tape = qml.tape.QuantumScript(
        [qml.RX(0.1, 0), qml.CNOT([0, 1]), qml.RY(-1.6, 1), qml.CNOT([1, 0]), qml.RX(0.6, 0)],
        [qml.expval(qml.PauliZ(0))],
        trainable_params=[0, 2],
    )
    exact_tapes, exact_fn = qml.gradients.param_shift(tape)
    expected = exact_fn(qml.device("default.qubit", wires=2).execute(exact_tapes))
    dev = qml.device("qstore.router", wires=2)
    tapes, fn = qml.gradients.finite_diff(tape)
    got = fn(dev.execute(tapes))
    assert np.allclose(got, expected, atol=1e-5)  # the method's own error is ~h = 1e-7
    single = {"qstore.batched.c64", "qstore.qsim"}  # the complex64 backends
    assert not single & set(dev.routing_report().totals)


def test_jax_device_vjps_of_a_batch_with_parameterless_tapes(jax_x64):
    # lightning returns an empty array for a tape without trainable parameters, which
    # JAX's callback counted as an output ("Mismatched number of outputs")
    jnp = jax.numpy

    def cost(device, params):
        tapes = [
            qml.tape.QuantumScript([qml.Hadamard(0)], [qml.expval(qml.PauliX(0))]),
            qml.tape.QuantumScript([qml.RY(jnp.array(0.5), 0)], [qml.expval(qml.PauliZ(0))]),
            qml.tape.QuantumScript(
                [qml.RY(params[0], 0), qml.RX(params[1], 0)], [qml.expval(qml.PauliZ(0))]
            ),
            qml.tape.QuantumScript([qml.RY(jnp.array(0.5), 0)], [qml.probs(wires=[0, 1])]),
        ]
        res = qml.execute(tapes, device, diff_method="adjoint", device_vjp=True)
        return sum(jnp.hstack(jax.tree_util.tree_leaves(res)))

    params = jnp.array([0.1, 0.2])
    x, y = params
    router = qml.device("qstore.router", wires=2)
    assert np.isclose(cost(router, params), 2 + np.cos(0.5) + np.cos(x) * np.cos(y))
    grad = jax.grad(lambda p: cost(router, p))(params)
    assert np.allclose(grad, [-np.cos(y) * np.sin(x), -np.cos(x) * np.sin(y)], atol=1e-7)


@pytest.mark.parametrize("device_name", ["qstore.batched", "qstore.router"])
def test_broadcast_shift_tapes_from_a_prepared_state(device_name):
    # the rows of a broadcast state preparation came out Fortran-ordered and the
    # engine refused them
    params = np.array([0.3, 0.027, 0.42])
    tape = qml.tape.QuantumScript(
        [qml.StatePrep(np.array([1.0, -1.0]) / np.sqrt(2), wires=0), qml.Rot(*params, wires=0)],
        [qml.expval(qml.PauliZ(0))],
        trainable_params=[1, 2, 3],
    )
    tapes, fn = qml.gradients.param_shift(tape, broadcast=True)
    expected = fn(qml.device("default.qubit", wires=1).execute(tapes))
    got = fn(qml.device(device_name, wires=1).execute(tapes))
    assert np.allclose(got, expected, atol=1e-12)
    assert abs(expected[1]) > 0.5  # a derivative that is not zero


def test_a_numpy_generator_seeds_the_router_as_it_seeds_default_qubit():
    def samples(seed):
        @qml.qnode(qml.device("qstore.router", wires=1, seed=seed), shots=200)
        def circuit():
            qml.Hadamard(0)
            return qml.sample(qml.PauliZ(0))

        return circuit()

    first = samples(np.random.default_rng(11))
    assert set(np.unique(first)) == {-1, 1}
    assert np.array_equal(first, samples(np.random.default_rng(11)))


def _hessian_circuit(device_name: str, interface: str, **qnode_options):
    @qml.qnode(qml.device(device_name, wires=2), interface=interface, **qnode_options)
    def circuit(w):
        qml.RX(w[0], 0)
        qml.RY(w[1], 1)
        qml.CNOT([0, 1])
        qml.RZ(w[2], 1)
        return qml.expval(qml.PauliX(1) @ qml.PauliY(0))

    return circuit


W_HESSIAN = np.array([0.4, 0.7, 0.3])


def test_autograd_differentiating_a_gradient_backpropagates(jax_x64):
    # qml.jacobian(qml.grad(f)) with default settings: device derivatives gave zeros
    def hessian(name):
        f = _hessian_circuit(name, "autograd")
        return qml.jacobian(qml.grad(f))(qml.numpy.array(W_HESSIAN, requires_grad=True))

    expected = hessian("default.qubit")
    assert abs(expected[0, 0]) > 0.1  # not a Hessian of zeros
    assert np.allclose(hessian("qstore.router"), expected, atol=1e-10)


def test_jax_hessian_backpropagates(jax_x64):
    def hessian(name):
        return jax.hessian(_hessian_circuit(name, "jax"))(jax.numpy.array(W_HESSIAN))

    expected = hessian("default.qubit")
    assert abs(expected[0, 0]) > 0.1
    assert np.allclose(hessian("qstore.router"), expected, atol=1e-10)


def test_torch_differentiating_a_backward_pass_warns_with_the_fix():
    torch = pytest.importorskip("torch")
    w = torch.tensor(W_HESSIAN, requires_grad=True)
    with pytest.warns(FirstOrderDerivativeWarning, match="max_diff=2"):
        torch.autograd.functional.hessian(_hessian_circuit("qstore.router", "torch"), w)
    expected = torch.autograd.functional.hessian(_hessian_circuit("default.qubit", "torch"), w)
    fixed = _hessian_circuit("qstore.router", "torch", max_diff=2)
    assert np.allclose(torch.autograd.functional.hessian(fixed, w), expected, atol=1e-10)
    # a plain backward pass (grad mode off inside it) keeps the router's own derivatives
    _hessian_circuit("qstore.router", "torch")(w).backward()
    assert w.grad is not None and torch.any(w.grad != 0)


def test_second_order_parameter_shift_runs_in_double_precision():
    # x[2] / x[0] at x[0] = 0.1 amplifies single-precision rounding beyond allclose
    def circuit(x):
        qml.RX(x[0] + x[1] + x[2], wires=0)
        qml.RY(x[1] - x[0] + 3 * x[2], wires=0)
        qml.CNOT(wires=[0, 1])
        qml.RZ(x[2] / x[0] - x[1], wires=1)
        return qml.probs(wires=[0, 1])

    x = qml.numpy.array([0.1, 0.2, 0.3], requires_grad=True)
    hessians = [
        qml.gradients.param_shift_hessian(
            qml.QNode(circuit, qml.device(name, wires=2), diff_method="parameter-shift", max_diff=2)
        )(x)
        for name in ("default.qubit", "qstore.router")
    ]
    assert np.abs(hessians[0]).max() > 0.5
    assert np.allclose(hessians[1], hessians[0], atol=1e-9, rtol=1e-9)
