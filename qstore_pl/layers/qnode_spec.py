"""What a framework layer needs to know about a QNode: its weights, outputs and a
serialisable description from which the QNode can be rebuilt."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np
import pennylane as qml
from pennylane.measurements import (
    CountsMP,
    DensityMatrixMP,
    ExpectationMP,
    ProbabilityMP,
    SampleMP,
    StateMP,
    VarianceMP,
)

from qstore_pl.interfaces.host import HostFunction, stack_results

#: Name of the QNode argument that receives the layer's inputs (TorchLayer's convention).
INPUT_ARG = "inputs"


def normalise_weight_shapes(qnode: qml.QNode, weight_shapes: Mapping) -> dict[str, tuple]:
    """Check ``weight_shapes`` against the QNode's signature; shapes become tuples.

    Raises
    ------
    TypeError
        If the QNode has no ``inputs`` argument, ``weight_shapes`` names an argument the
        QNode does not have, or an argument without a default is neither.
    """
    if not isinstance(qnode, qml.QNode):
        raise TypeError(f"expected a qml.QNode, got {type(qnode).__name__}")
    params = inspect.signature(qnode.func).parameters
    if INPUT_ARG not in params:
        raise TypeError(
            f"the QNode's function {qnode.func.__name__}{inspect.signature(qnode.func)} has "
            f"no {INPUT_ARG!r} argument; name the argument that takes the data {INPUT_ARG!r}"
        )
    if INPUT_ARG in weight_shapes:
        raise ValueError(f"{INPUT_ARG!r} is the data argument; remove it from weight_shapes")
    unknown = sorted(set(weight_shapes) - set(params))
    if unknown:
        raise ValueError(
            f"weight_shapes names {unknown}, which the QNode's function does not take; "
            f"its arguments are {list(params)}"
        )
    missing = [
        name
        for name, p in params.items()
        if name != INPUT_ARG
        and name not in weight_shapes
        and p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if missing:
        raise ValueError(
            f"the QNode's arguments {missing} have no default and are not in weight_shapes; "
            "give each a shape"
        )
    shapes = {}
    for name, shape in weight_shapes.items():
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"weight shape {shape} for {name!r} has a negative size")
        shapes[name] = shape
    return shapes


_DIFFERENTIABLE = (ExpectationMP, VarianceMP, ProbabilityMP)


def trial_tape(
    qnode: qml.QNode, weight_shapes: Mapping[str, tuple], n_features: int
) -> qml.tape.QuantumScript:
    """The QNode's circuit for placeholder inputs and weights of the declared shapes.

    Raises
    ------
    ValueError
        If the circuit function fails with weights of these shapes (a wrong shape in
        ``weight_shapes`` shows up as an ``IndexError`` deep inside a template).
    """
    args = {name: np.zeros(shape) for name, shape in weight_shapes.items()}
    try:
        # ones, not zeros: amplitude encodings reject a zero vector
        return qml.tape.make_qscript(qnode.func)(**{INPUT_ARG: np.ones(n_features)}, **args)
    except (IndexError, ValueError, TypeError) as err:
        declared = ", ".join(f"{name}: {shape}" for name, shape in weight_shapes.items())
        raise ValueError(
            f"the circuit {qnode.func.__name__} fails with weights of the declared shapes "
            f"({declared}) and {n_features} input features: {type(err).__name__}: {err}. "
            "Check weight_shapes: each shape must match what the circuit indexes, e.g. "
            "qml.StronglyEntanglingLayers.shape(n_layers, n_wires) for that template"
        ) from err


def output_width(qnode: qml.QNode, weight_shapes: Mapping[str, tuple], n_features: int) -> int:
    """Number of real outputs per sample, read from the circuit without running it.

    Raises
    ------
    ValueError
        If the circuit returns something a layer cannot output as real numbers
        (samples, counts, states).
    """
    tape = trial_tape(qnode, weight_shapes, n_features)
    n_wires = len(qnode.device.wires) if qnode.device.wires is not None else tape.num_wires
    width = 0
    for mp in tape.measurements:
        if isinstance(mp, (SampleMP, CountsMP, StateMP, DensityMatrixMP)) or not isinstance(
            mp, _DIFFERENTIABLE
        ):
            raise ValueError(
                f"a layer outputs real, differentiable numbers; the circuit returns "
                f"{type(mp).__name__}. Return qml.expval, qml.var or qml.probs instead"
            )
        width += int(np.prod(mp.shape(num_device_wires=n_wires), dtype=int))
    if width == 0:
        raise ValueError("the circuit returns no measurements")
    return width


def host_function(qnode: qml.QNode, weight_names: list[str], input_gradients: bool):
    """The QNode as a :class:`HostFunction` of ``(inputs, *weights)`` on the autograd interface."""
    on_autograd = qnode.update(interface="autograd")

    def fn(inputs, *weights):
        results = on_autograd(
            **{INPUT_ARG: inputs}, **dict(zip(weight_names, weights, strict=True))
        )
        return stack_results(results, inputs.shape[0])

    first = 0 if input_gradients else 1
    return HostFunction(fn, diff_argnums=range(first, 1 + len(weight_names)))


def describe_device(device) -> dict:
    """A serialisable description of ``device``: its name and wires.

    Loading rebuilds it only if it is a local simulator
    (:func:`qstore_pl.keras.loading.rebuild_device`).

    Only the name and wires are kept: router configs can hold API keys, and callbacks
    and budgets are runtime settings, so they are never written into saved models.
    """
    wires = None if device.wires is None else list(device.wires.labels)
    return {"name": device.name, "wires": wires}


def describe_qnode_options(qnode: qml.QNode) -> dict:
    """The QNode's differentiation method and shots, serialisable."""
    if not isinstance(qnode.diff_method, str):
        raise ValueError(
            f"diff_method={qnode.diff_method!r} cannot be saved; give the QNode its "
            "diff_method as a string (e.g. 'parameter-shift') to save the layer"
        )
    if qnode.shots.has_partitioned_shots:
        raise ValueError("a shot vector cannot be saved; give the QNode a single shot count")
    return {"diff_method": qnode.diff_method, "shots": qnode.shots.total_shots}
