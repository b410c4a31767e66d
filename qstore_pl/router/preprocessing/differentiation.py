"""How a caller differentiates circuits, read from the circuits and the execution config.

The router differentiates with the adjoint method or batched parameter shifts, which
give first derivatives of circuit parameters. Some requests need something else:

- the ML framework differentiating through the simulation (backpropagation): asked for
  with ``diff_method="backprop"``, needed by default for higher-order derivatives and
  trainable observable coefficients (as default.qubit's ``"best"`` does), and what a
  framework does when it traces a direct ``device.execute``;
- gradient transforms that difference results (finite differences, SPSA), whose
  results must be computed in double precision;
- complex-valued trainable gate parameters, which no derivative method here handles.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import numpy as np
import pennylane as qml
from autograd.tracer import Box as ArrayBox
from pennylane.devices import ExecutionConfig
from pennylane.math import Interface
from pennylane.tape import QuantumScript

from qstore_pl.devices.execution_config import interface_name
from qstore_pl.exceptions import InvalidParameterError
from qstore_pl.router.routing.noise import is_channel

# Gradient transforms that divide differences of results by a small step.
_DIFFERENCING = {"finite-diff", "spsa", qml.gradients.finite_diff, qml.gradients.spsa_grad}
_PLAIN = (float, int, complex, np.ndarray, np.generic)


# Gradient transforms that fall back to finite differences for operations without a
# shift rule (``grad_method == "F"``, e.g. a ``qml.cond`` before its measurement is
# deferred), as PennyLane's ``param_shift`` does with its default ``fallback_fn``.
_SHIFT_RULES = {"parameter-shift", qml.gradients.param_shift}

#: ``ExecutionConfig.device_options`` key the router sets (in ``setup_execution_config``)
#: when a QNode's gradient will difference results although its method is a shift rule.
DIFFERENCED_OPTION = "qstore_differenced"


def differences_values(config: ExecutionConfig) -> bool:
    """Whether derivatives under ``config`` are taken by differencing results in a way
    single precision swamps: a differencing method, a shift rule that falls back to one
    (see :func:`falls_back_to_differences`, recorded in the config's device options),
    or second-order shifts (``max_diff=2``: differences of differences)."""
    return (
        _is_one_of(config.gradient_method, _DIFFERENCING)
        or bool(config.device_options.get(DIFFERENCED_OPTION, False))
        or config.derivative_order > 1
    )


def falls_back_to_differences(gradient_method, circuit: QuantumScript) -> bool:
    """Whether a shift-rule ``gradient_method`` will difference results for ``circuit``.

    Parameter shift differentiates a trainable operation that has no shift rule
    (``grad_method == "F"``) by finite differences, whose steps single precision
    swamps (a conditional rotation's gradient comes out wrong by O(1)).
    """
    if not _is_one_of(gradient_method, _SHIFT_RULES):
        return False
    trainable = set(circuit.trainable_params)
    index = 0
    for op in circuit.operations:
        params = range(index, index + len(op.data))
        if getattr(op, "grad_method", None) == "F" and trainable.intersection(params):
            return True
        index += len(op.data)
    return False


def _is_one_of(gradient_method, methods: set) -> bool:
    try:
        return gradient_method in methods
    except TypeError:  # an unhashable custom method
        return False


def needs_backprop(config: ExecutionConfig, circuit: QuantumScript) -> bool:
    """Whether ``"best"`` must mean backpropagation for this circuit, as on default.qubit.

    Device derivatives are first derivatives of gate parameters only: higher orders
    (``max_diff=2``, or autograd differentiating a derivative) would come out as
    zeros, and trainable coefficients of a
    measured observable are not differentiated by the adjoint method. A circuit with
    noise channels is differentiated as default.mixed's ``"best"`` does it: by
    backpropagation through the density matrix (channel parameters included).
    """
    return (
        config.derivative_order > 1
        or trains_observables(circuit)
        or any(is_channel(op) for op in circuit.operations)
        or traces_complex(circuit)
        or nests_differentiation(circuit)
    )


def nests_differentiation(circuit: QuantumScript) -> bool:
    """Whether the ML framework differentiates ``circuit``'s parameters more than once
    at a time (``qml.jacobian(qml.grad(f))``: an autograd box inside a box;
    ``jax.hessian``: a JVP tracer inside a JVP tracer), which device derivatives cannot
    give (their own derivative is taken as zero) and backpropagation can."""
    return any(_differentiation_depth(p) > 1 for op in circuit.operations for p in op.data)


class FirstOrderDerivativeWarning(UserWarning):
    """torch builds a graph of the router's derivative, whose own derivative is zero."""


def warn_differentiable_backward(config: ExecutionConfig) -> None:
    """Warn when torch may differentiate the router's derivative.

    torch runs a backward pass with grad mode on when asked to build its graph
    (``create_graph=True``: a Hessian, but also a Jacobian kept differentiable, as
    PennyLane's classical Fisher matrix does). Device derivatives are first order: the
    derivative itself is right, its own derivative would be zero, and nothing in the
    forward pass told the router to backpropagate instead.
    """
    if not interface_name(config).startswith("torch") or "torch" not in sys.modules:
        return
    import torch

    if torch.is_grad_enabled():
        warnings.warn(
            "torch is building a graph of the router's derivative (create_graph=True): "
            "the derivative is right, but the router's device derivatives are first "
            "order, so a derivative of it (e.g. a Hessian) would be zero. For higher "
            "orders give the QNode diff_method='backprop' or max_diff=2.",
            FirstOrderDerivativeWarning,
            stacklevel=2,
        )


# JAX's tracers of forward- and reverse-mode differentiation; a vmap's or jit's tracer
# in between does not count
_JAX_DIFFERENTIATING = {"JVPTracer", "LinearizeTracer"}


def framework_wrappers(param) -> list[tuple[str, bool]]:
    """The framework wrappers around a parameter, outermost first: each one's type
    name and whether it differentiates (autograd's boxes, JAX's JVP and linearize
    tracers; not a tracer that holds a value, such as vmap's ``BatchTracer``). The walk
    ends at a value or at an abstract (jit) tracer."""
    wrappers: list[tuple[str, bool]] = []
    for _ in range(16):  # transformations nest a few levels, never more
        name = type(param).__name__
        if isinstance(param, ArrayBox):
            wrappers.append((name, True))
            param = param._value
        elif name in _JAX_DIFFERENTIATING:
            wrappers.append((name, True))
            param = param.primal
        elif name.endswith("Tracer") and hasattr(param, "val"):
            wrappers.append((name, False))
            param = param.val
        else:
            break
    return wrappers


def _differentiation_depth(param) -> int:
    return sum(differentiates for _, differentiates in framework_wrappers(param))


def backprop_fits(circuit: QuantumScript) -> bool:
    """Whether backpropagation through default.qubit can differentiate ``circuit``: as
    default.qubit decides, analytic and without a ``SparseHamiltonian`` measured (its
    sparse expectation value does not go through the ML framework's tensors)."""
    return not circuit.shots and not any(
        isinstance(mp.obs, qml.SparseHamiltonian) for mp in circuit.measurements
    )


def trains_observables(circuit: QuantumScript) -> bool:
    """Whether a trainable parameter belongs to a measured observable."""
    gate_params = sum(len(op.data) for op in circuit.operations)
    return any(index >= gate_params for index in circuit.trainable_params)


def traced(tape: QuantumScript) -> bool:
    """Whether an ML framework is tracing a gate parameter of ``tape`` to differentiate it.

    QNodes hand devices NumPy parameters unless the framework differentiates through
    the device itself (backpropagation); a framework tensor that records gradients
    here means exactly that.
    """
    for op in tape.operations:
        for param in op.data:
            if not isinstance(param, _PLAIN) and _records_gradient(param):
                return True
    return False


def _records_gradient(param) -> bool:
    interface = qml.math.get_interface(param)
    if interface == "torch":
        return bool(getattr(param, "requires_grad", False))
    if interface in ("autograd", "jax", "tensorflow"):
        return qml.math.in_backprop(param, interface)
    return False


def framework_interface(config: ExecutionConfig, tapes: Sequence[QuantumScript]) -> str:
    """The ML framework of the parameters: the config's, or read from the parameters
    when the config names none (a direct ``device.execute``)."""
    interface = getattr(config.interface, "value", config.interface)
    if interface not in (None, Interface.NUMPY.value, Interface.AUTO.value):
        return interface
    params = [p for tape in tapes for op in tape.operations for p in op.data]
    return qml.math.get_interface(*params) if params else Interface.NUMPY.value


def traces_complex(circuit: QuantumScript) -> bool:
    """Whether the ML framework traces (differentiates) a complex gate parameter of the
    caller's ``circuit``, read before preprocessing from the parameters themselves."""
    return _first_complex(circuit, _traced_positions(circuit)) is not None


def reject_complex_traced(circuit: QuantumScript) -> None:
    """:func:`reject_complex_trainable` for the caller's circuit, before preprocessing,
    whatever it measures."""
    _raise_for(circuit, _first_complex(circuit, _traced_positions(circuit)))


def reject_complex_trainable(tape: QuantumScript) -> None:
    """Raise :class:`InvalidParameterError` for a trainable complex gate parameter.

    Only device tapes measuring expectation values are checked: for other measurements
    the router's adjoint preprocessing casts every parameter to complex itself
    (:func:`reject_complex_traced` checks those before it does).
    """
    if all(isinstance(mp, qml.measurements.ExpectationMP) for mp in tape.measurements):
        _raise_for(tape, _first_complex(tape, tape.trainable_params))


def _traced_positions(circuit: QuantumScript) -> list[int]:
    params = circuit.get_parameters(trainable_only=False, operations_only=True)
    return [
        i for i, p in enumerate(params) if not isinstance(p, _PLAIN) and qml.math.requires_grad(p)
    ]


def _first_complex(tape: QuantumScript, positions) -> tuple | None:
    """``(operation, parameter)`` of the first complex gate parameter among
    ``positions`` (indices into all of ``tape``'s parameters), or ``None``."""
    params = tape.get_parameters(trainable_only=False, operations_only=True)
    for position in positions:
        if position >= len(params):  # an observable's parameter
            continue
        param = params[position]
        if isinstance(param, _PLAIN):  # the common case, without qml.math's dispatch
            complex_valued = np.iscomplexobj(param)
        else:
            complex_valued = "complex" in qml.math.get_dtype_name(param)
        if complex_valued:
            return _operation_at(tape, position), param
    return None


def _operation_at(tape: QuantumScript, position: int):
    for op in tape.operations:
        if position < len(op.data):
            return op
        position -= len(op.data)
    raise IndexError("gate parameter index out of range")


def _raise_for(tape: QuantumScript, found: tuple | None) -> None:
    if found is None:
        return
    op, param = found
    raise InvalidParameterError(
        f"the trainable parameter of {op.name} on wires {op.wires.tolist()} is "
        f"complex ({qml.math.get_dtype_name(param)}): the router's adjoint method "
        "differentiates real gate parameters only. "
        "Pass the real part (e.g. jnp.real(x)), or use diff_method='backprop'."
    )
