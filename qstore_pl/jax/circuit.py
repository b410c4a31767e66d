"""A circuit as a JAX function of a batch: one host call per batch, any JAX transform.

PennyLane's JAX interface under ``jax.jit`` spells out one Jacobian per circuit in the
compiled program, so a batch of 32 broadcast samples becomes 32 device Jacobians (and
a minute of compilation). Here the circuit is recorded once per trace: JAX runs the
circuit function and the decompositions on its tracers, so every gate angle is a JAX
expression of the inputs and weights (classical processing stays JAX's to
differentiate), and the host receives one ``(n_angles, batch)`` table per batch.

- values: one ``jax.pure_callback`` per batch; under ``jax.vmap`` the callback takes
  the mapped axes too (``vmap_method="broadcast_all"``) and folds them into the batch,
  so a vmapped one-sample function still makes one host call;
- derivatives: ``jax.custom_jvp`` whose rule asks the host for the values and the
  per-sample Jacobian with respect to the angles (one device call, see
  :mod:`qstore_pl.interfaces.broadcast_program`) and contracts it with the tangents in
  ``jax.numpy``. That contraction is linear, so JAX transposes it: ``grad``,
  ``jacrev``, ``jacfwd``, ``vmap`` and ``jit`` all work, and a training step runs
  the circuit once;
- second derivatives (``jax.hessian``) would need the Jacobian's own derivative,
  which device adjoint methods do not give: they raise at trace time with the
  alternative.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.interfaces.broadcast_program import BroadcastProgram, is_gate_with_angle

SECOND_ORDER_MESSAGE = (
    "second derivatives (jax.hessian, jacfwd of jacrev, grad of grad) of a "
    "qstore_pl.jax circuit function are not available: the device's adjoint derivatives "
    "are first order. For higher orders use a QNode with interface='jax' and "
    "diff_method='backprop' (qstore.router then backpropagates on default.qubit)"
)


def circuit_function(qnode_or_qfunc: Callable, device: qml.devices.Device | None = None):
    """The circuit as ``f(*args, **kwargs) -> (batch, n_outputs)`` JAX array.

    Parameters
    ----------
    qnode_or_qfunc : QNode or Callable
        A QNode (its function and device are used; it must be analytic and have no
        transforms) or a quantum function, with ``device``. Arguments that carry a
        leading batch axis broadcast the circuit over it, as in PennyLane.
    device : Device, optional
        Where the circuits run, when ``qnode_or_qfunc`` is a quantum function. A
        device with vector-Jacobian products: ``qstore.router`` (routing, callbacks,
        the tracker and budgets apply).

    Returns
    -------
    Callable
        ``f(*args)``: a ``(batch, n_outputs)`` array for a broadcast circuit, ``(n_outputs,)``
        otherwise; every measurement (``qml.expval`` or ``qml.probs``) contributes its
        columns in order. Works under ``jax.jit``, ``jax.vmap``, ``jax.grad``,
        ``jax.jacrev`` and ``jax.jacfwd``.
    """
    qfunc, device = _qfunc_and_device(qnode_or_qfunc, device)

    def f(*args, **kwargs):
        import jax.numpy as jnp

        tape = _record(qfunc, args, kwargs)
        batch = tape.batch_size
        angles, skeleton = _angle_table(tape, batch or 1)
        program = BroadcastProgram(skeleton, device)
        dtype = jnp.result_type(float)
        run = _differentiable_run(program, dtype)
        # without gate angles nothing depends on the arguments: values only
        out = run(angles.astype(dtype)) if program.n_params else _values(program, dtype, batch or 1)
        return out if batch else out[0]

    return f


def _qfunc_and_device(qnode_or_qfunc, device):
    if isinstance(qnode_or_qfunc, qml.QNode):
        qnode = qnode_or_qfunc
        if device is not None and device is not qnode.device:
            raise ValueError("give a device only with a quantum function, not with a QNode")
        if qnode.shots:
            raise ValueError(
                f"the QNode has shots={qnode.shots}: this path is analytic; drop the shots "
                "or use the QNode itself (interface='jax') for sampled results"
            )
        if len(qnode.compile_pipeline):
            raise ValueError(
                "the QNode carries transforms, which this path would skip; apply them to a "
                "QNode with interface='jax' instead, or drop them"
            )
        return qnode.func, qnode.device
    if device is None:
        raise ValueError(
            "give the device to run on: circuit_function(qfunc, qml.device('qstore.router', "
            "wires=n)), or pass a QNode"
        )
    return qnode_or_qfunc, device


def _record(qfunc: Callable, args, kwargs) -> QuantumScript:
    """The circuit decomposed to one-angle gates, its angles JAX expressions."""
    tape = qml.tape.make_qscript(qfunc)(*args, **kwargs)
    try:
        (tape,), _ = qml.devices.preprocess.decompose(tape, stopping_condition=is_gate_with_angle)
    except (qml.exceptions.DecompositionUndefinedError, qml.exceptions.DeviceError) as error:
        raise TypeError(
            f"{error}: this path runs circuits of gates with at most one angle; use a "
            "QNode with interface='jax' for this circuit"
        ) from error
    for mp in tape.measurements:
        if mp.obs is not None and any(_is_traced(d) for d in mp.obs.data):
            raise TypeError(
                f"the observable of {mp} depends on the function's arguments; trainable "
                "observables are not supported here: use a QNode with interface='jax'"
            )
    return tape


def _angle_table(tape: QuantumScript, batch: int):
    """``(K, batch)`` angles (weights repeated per sample) and the tape's skeleton."""
    import jax.numpy as jnp

    angles = [p for op in tape.operations for p in op.data]
    for p in angles:
        if jnp.iscomplexobj(p):
            raise TypeError(f"complex gate parameter {p}: gate angles must be real")
    rows = [jnp.broadcast_to(jnp.real(p), (batch,)) for p in angles]
    table = jnp.stack(rows) if rows else jnp.zeros((0, batch))
    placeholders = [np.zeros(batch)] * len(angles)
    ops = [op for op in tape.operations]
    skeleton = QuantumScript(ops, tape.measurements).bind_new_parameters(
        placeholders, list(range(len(angles)))
    )
    return table, skeleton


def _is_traced(value) -> bool:
    import jax

    return isinstance(value, jax.core.Tracer)


def _values(program: BroadcastProgram, dtype, batch: int):
    """A circuit without gate angles: its values, a constant."""
    import jax

    return jax.pure_callback(
        lambda: program.values(np.zeros((0, batch))).astype(dtype),
        jax.ShapeDtypeStruct((batch, program.n_outputs), dtype),
    )


def _differentiable_run(program: BroadcastProgram, dtype) -> Callable:
    """``angles (K, B) -> (B, n_outputs)`` with a JVP from host Jacobians."""
    import jax
    import jax.numpy as jnp

    def shapes(angles):
        batch = angles.shape[-1]
        values = jax.ShapeDtypeStruct((batch, program.n_outputs), dtype)
        jacobian = jax.ShapeDtypeStruct((batch, program.n_outputs, program.n_params), dtype)
        return values, jacobian

    def host_values(angles):
        return program.values(angles).astype(dtype)

    def host_values_and_jacobian(angles):
        values, jacobian = program.values_and_jacobian(angles)
        return values.astype(dtype), jacobian.astype(dtype)

    @jax.custom_jvp
    def values_and_jacobian(angles):
        return jax.pure_callback(
            host_values_and_jacobian, shapes(angles), angles, vmap_method="broadcast_all"
        )

    @values_and_jacobian.defjvp
    def _second_order(primals, tangents):
        raise NotImplementedError(SECOND_ORDER_MESSAGE)

    @jax.custom_jvp
    def run(angles):
        return jax.pure_callback(
            host_values, shapes(angles)[0], angles, vmap_method="broadcast_all"
        )

    @run.defjvp
    def _first_order(primals, tangents):
        (angles,), (d_angles,) = primals, tangents
        values, jacobian = values_and_jacobian(angles)
        return values, jnp.einsum("...bok,...kb->...bo", jacobian, d_angles)

    return run
