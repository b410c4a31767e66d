"""The router's preprocessing: turn user circuits into ones its backends can run.

Gates are decomposed until every enabled backend accepts them (so routing is free to
pick any of them), measurements are validated, and, for the adjoint method, trainable
gates are reduced to ones every adjoint-capable backend can differentiate and
non-expectation measurements become a state measurement plus classical
postprocessing that the ML framework differentiates. Circuits finally move onto wires
``0 .. k-1`` in the router's wire order, so a backend simulates only the wires a
circuit touches.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import partial

import pennylane as qml
from pennylane import math
from pennylane.devices.default_qubit import (
    adjoint_state_measurements,
    all_state_postprocessing,
)
from pennylane.devices.preprocess import (
    decompose,
    device_resolve_dynamic_wires,
    no_sampling,
    validate_adjoint_trainable_params,
    validate_device_wires,
    validate_measurements,
    validate_observables,
)
from pennylane.measurements import (
    ClassicalShadowMP,
    ExpectationMP,
    ProbabilityMP,
    SampleMeasurement,
    ShadowExpvalMP,
    StateMeasurement,
    StateMP,
)
from pennylane.operation import Operator
from pennylane.ops import MidMeasure
from pennylane.ops.op_math import Conditional
from pennylane.tape import QuantumScript
from pennylane.transforms import broadcast_expand, defer_measurements
from pennylane.transforms.core import CompilePipeline, transform
from pennylane.wires import Wires

from qstore_pl.devices.execution_config import interface_name
from qstore_pl.exceptions import UnsupportedCircuitError
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.noise import is_channel

NAME = "qstore.router"


def _accepts(caps: BackendCapabilities, op: Operator) -> bool:
    if caps.operations is not None:
        return op.name in caps.operations
    return op.has_matrix and len(op.wires) <= caps.max_matrix_wires


def gate_acceptor(capabilities: Sequence[BackendCapabilities]) -> Callable[[Operator], bool]:
    """Stopping condition: every backend runs the gate, or some does and it cannot be
    decomposed further."""
    known: dict[Hashable, bool] = {}  # the answer depends on the gate's kind only

    def accepted(op: Operator) -> bool:
        if isinstance(op, (MidMeasure, Conditional)):
            return True  # handled by the mid-circuit-measurement method
        if is_channel(op):
            return True  # routing picks a backend that simulates it, or says what to add
        key = (type(op), op.name, len(op.wires))
        if key not in known:
            known[key] = all(_accepts(c, op) for c in capabilities) or (
                not op.has_decomposition and any(_accepts(c, op) for c in capabilities)
            )
        return known[key]

    return accepted


def adjoint_acceptor(capabilities: Sequence[BackendCapabilities]) -> Callable[[Operator], bool]:
    """Stopping condition for the adjoint method: trainable gates have one parameter, a
    generator, and every adjoint-capable backend can differentiate them."""
    adjoint_sets = [
        c.differentiable_operations
        for c in capabilities
        if "adjoint" in c.derivatives and c.differentiable_operations is not None
    ]

    def accepted(op: Operator) -> bool:
        if isinstance(op, (MidMeasure, Conditional)):
            return False
        if op.num_params == 0:
            return True
        if not any(math.requires_grad(d) for d in op.data):
            # default.qubit's adjoint_jacobian (PennyLane 0.45) counts parameters of
            # one-parameter gates only, so a fixed Rot/CRot/U3 shifts every later
            # index and the Jacobian comes out wrong: decompose those too.
            return op.num_params == 1
        return (
            op.num_params == 1
            and op.has_generator
            and all(op.name in names for names in adjoint_sets)
        )

    return accepted


def _analytic_measurement(mp) -> bool:
    return isinstance(mp, StateMeasurement)


def _sampled_measurement(mp) -> bool:
    return isinstance(mp, (SampleMeasurement, ClassicalShadowMP, ShadowExpvalMP))


@transform
def map_to_backend_wires(tape: QuantumScript, device_wires: Wires | None = None):
    """Move a circuit onto wires ``0 .. k-1``, keeping the device's wire order."""
    order = device_wires if device_wires is not None else tape.wires
    used = [w for w in order if w in tape.wires]
    if used == list(range(len(used))):
        return (tape,), _first
    wire_map = {w: i for i, w in enumerate(used)}
    mapped = QuantumScript(
        [op.map_wires(wire_map) for op in tape.operations],
        [mp.map_wires(wire_map) for mp in tape.measurements],
        shots=tape.shots,
        trainable_params=tape.trainable_params,
    )
    return (mapped,), _first


def _first(results):
    return results[0]


@transform
def state_in_backend_order(
    tape: QuantumScript,
    device_wires: Wires | None = None,
    device_vjp: bool = False,
    keep_probs: bool = False,
):
    """``adjoint_state_measurements`` with the state in the order the backend simulates.

    default.qubit's adjoint Jacobian of a state (PennyLane 0.45.1) comes in ascending
    wire order whatever the order of the state measurement's wires, while
    ``adjoint_state_measurements`` asks for the state in the order the wires first
    appear in the circuit, so probs of a circuit whose first gate is not on its lowest
    wire got a permuted Jacobian. After :func:`map_to_backend_wires` this order is
    ``0 .. k-1`` ascending. With ``keep_probs`` (some backend differentiates
    probabilities itself), expectation values and probabilities pass unchanged.
    """
    if keep_probs and all(
        isinstance(mp, (ExpectationMP, ProbabilityMP)) for mp in tape.measurements
    ):
        return (tape,), _first
    (new_tape,), postprocess = adjoint_state_measurements(tape, device_vjp=device_vjp)
    if new_tape is tape:
        return (tape,), postprocess
    order = device_wires if device_wires is not None else tape.wires
    wires = Wires([w for w in order if w in tape.wires])
    new_tape = new_tape.copy(measurements=[StateMP(wires=wires)])
    return (new_tape,), partial(
        all_state_postprocessing, measurements=tape.measurements, wire_order=wires
    )


@transform
def expand_trainable_broadcast(tape: QuantumScript, split: str = "trained"):
    """Split a parameter-broadcast tape into its circuits where the interface needs it.

    Vector-Jacobian products keep broadcast tapes whole (a TorchLayer batch with
    trainable weights runs as one simulation). ``split`` says when that is not enough:

    - ``"never"`` (autograd): its VJPs take entries of mixed shapes, so even a
      broadcast trainable input stays whole (Keras layers keep whole batches);
    - ``"trained"`` (torch): VJP entries of one tape must share a shape, which a
      broadcast trainable parameter breaks; trainability is read from the parameters
      themselves, since decompositions earlier in the pipeline reset
      ``tape.trainable_params`` to every parameter;
    - ``"always"`` (JAX): under ``jax.jit`` PennyLane differentiates through
      Jacobians, which need one tape per circuit.
    """
    if not tape.batch_size or split == "never":
        return (tape,), _first
    if split == "always":
        return broadcast_expand(tape)
    for op in tape.operations:
        for index, param in enumerate(op.data):
            if qml.math.ndim(param) > op.ndim_params[index] and _may_be_trained(param):
                return broadcast_expand(tape)
    return (tape,), _first


def _may_be_trained(param) -> bool:
    if qml.math.get_interface(param) == "tensorflow":
        return True  # only a GradientTape knows what it watches
    return bool(qml.math.requires_grad(param))


def build_pipeline(
    config: qml.devices.ExecutionConfig,
    capabilities: Sequence[BackendCapabilities],
    device_wires: Wires | None,
) -> CompilePipeline:
    """The router's compile pipeline for an execution config.

    Parameters
    ----------
    config : ExecutionConfig
        Resolved execution config (gradient method, mid-circuit measurement method).
    capabilities : Sequence[BackendCapabilities]
        Capabilities of every enabled backend.
    device_wires : Wires or None
        The router's wires.
    """
    pipeline = CompilePipeline()
    deferred = config.mcm_config.mcm_method == "deferred"
    if deferred:
        pipeline.add_transform(defer_measurements, allow_postselect=True)
    pipeline.add_transform(
        decompose,
        stopping_condition=gate_acceptor(capabilities),
        device_wires=device_wires,
        name=NAME,
        error=UnsupportedCircuitError,
    )
    pipeline.add_transform(
        device_resolve_dynamic_wires, wires=device_wires, allow_resets=not deferred
    )
    pipeline.add_transform(validate_device_wires, device_wires, name=NAME)
    pipeline.add_transform(
        validate_measurements,
        analytic_measurements=_analytic_measurement,
        sample_measurements=_sampled_measurement,
        name=NAME,
    )
    if config.gradient_method == "adjoint":
        add_adjoint_transforms(pipeline, config, capabilities, device_wires)
    pipeline.add_transform(map_to_backend_wires, device_wires)
    return pipeline


def add_adjoint_transforms(
    pipeline: CompilePipeline,
    config: qml.devices.ExecutionConfig,
    capabilities: Sequence[BackendCapabilities],
    device_wires: Wires | None,
) -> None:
    """Append the transforms that make circuits fit for the adjoint method."""
    name = f"adjoint + {NAME}"
    pipeline.add_transform(no_sampling, name=name)
    pipeline.add_transform(
        decompose,
        stopping_condition=adjoint_acceptor(capabilities),
        device_wires=device_wires,
        name=name,
        skip_initial_state_prep=False,
    )
    pipeline.add_transform(validate_observables, lambda obs: obs.has_matrix, name=name)
    # Probabilities are differentiated natively where a backend can (qstore.batched),
    # otherwise, like states, as a state measurement plus postprocessing. Without a
    # backend for them, refuse them here, so that supports_derivatives says no (and
    # "best" falls back to parameter shift) instead of routing failing later.
    kinds = {kind for c in capabilities for found in c.derivatives.values() for kind in found}
    state, probs = "state" in kinds, "probs" in kinds

    def accepted(mp) -> bool:
        if isinstance(mp, ExpectationMP):
            return True
        if isinstance(mp, ProbabilityMP):
            return probs or state
        # as default.qubit: any measurement the state gives without a basis change
        # (var of a diagonal observable too) is postprocessed from the state
        return state and not mp.diagonalizing_gates()

    pipeline.add_transform(validate_measurements, analytic_measurements=accepted, name=name)
    pipeline.add_transform(
        state_in_backend_order,
        device_wires,
        device_vjp=config.use_device_jacobian_product,
        keep_probs=probs,
    )
    if config.use_device_jacobian_product:
        interface = interface_name(config)
        split = "never" if interface == "autograd" else "trained"
        if interface.startswith("jax"):
            split = "always"
        pipeline.add_transform(expand_trainable_broadcast, split=split)
    else:
        pipeline.add_transform(broadcast_expand)
    pipeline.add_transform(validate_adjoint_trainable_params)
