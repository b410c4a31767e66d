"""A circuit as a JAX function of a batch: one host call per batch, any JAX transform.

PennyLane's JAX interface under ``jax.jit`` spells out one Jacobian per circuit in the
compiled program, so a batch of 32 broadcast samples becomes 32 device Jacobians (and
a minute of compilation). Here the circuit is recorded once per trace: JAX runs the
circuit function and the decompositions on its tracers, so every gate angle is a JAX
expression of the inputs and weights (classical processing stays JAX's to
differentiate), and the host receives one ``(n_angles, batch)`` table per batch
(:class:`~qstore_pl.layers.angle_table.AngleTable`: on ``qstore.router`` it binds
into the batched engine's compiled plans, no tape per call).

- values: one ``jax.pure_callback`` per batch; under ``jax.vmap`` the callback takes
  the mapped axes too (``vmap_method="broadcast_all"``) and folds them into the batch,
  so a vmapped one-sample function still makes one host call;
- derivatives: ``jax.custom_jvp`` whose tangent map is a linear primitive with a
  transpose (:mod:`qstore_pl.interfaces.jax_linear`): ``grad`` runs the forward pass
  and one adjoint sweep with the step's cotangent, as a torch layer does; ``jacrev``,
  ``jacfwd``, ``vmap`` and ``jit`` all work;
- second derivatives (``jax.hessian``) would need the Jacobian's own derivative,
  which device adjoint methods do not give: they raise at trace time with the
  alternative;
- finite shots (the QNode's, or a quantum function's device's): values are sampled
  and derivatives follow PennyLane's parameter-shift rule, every row of the angle
  table shifted across the whole batch at once, on the compiled path or the tape
  path. Derivative methods or options the rule does not match go through the QNode
  itself; a shot vector is refused (its results are one per shot group).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from functools import partial

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.devices.grouping import structure_key
from qstore_pl.interfaces.broadcast_program import is_gate_with_angle
from qstore_pl.interfaces.jax_linear import SECOND_ORDER_MESSAGE, angle_jvp, folded_values
from qstore_pl.layers.angle_table import AngleTable
from qstore_pl.layers.compiled import CompiledPathWarning, shots_refusal
from qstore_pl.support.bounded_cache import BoundedCache


def circuit_function(qnode_or_qfunc: Callable, device: qml.devices.Device | None = None):
    """The circuit as ``f(*args, **kwargs) -> (batch, n_outputs)`` JAX array.

    Parameters
    ----------
    qnode_or_qfunc : QNode or Callable
        A QNode (its function, device and shots are used; with transforms, or with
        shots and a ``diff_method`` other than ``"best"`` or ``"parameter-shift"`` or
        gradient options, its calls go through the QNode itself, with a
        :class:`CompiledPathWarning`) or a quantum function, with ``device``.
        Arguments that carry a leading batch axis broadcast the circuit over it, as in
        PennyLane.
    device : Device, optional
        Where the circuits run, when ``qnode_or_qfunc`` is a quantum function. A
        device with vector-Jacobian products: ``qstore.router`` (routing, callbacks,
        the tracker and budgets apply); with shots (the device's), any device.

    Returns
    -------
    Callable
        ``f(*args)``: a ``(batch, n_outputs)`` array for a broadcast circuit, ``(n_outputs,)``
        otherwise; every measurement (``qml.expval`` or ``qml.probs``) contributes its
        columns in order. Works under ``jax.jit``, ``jax.vmap``, ``jax.grad``,
        ``jax.jacrev`` and ``jax.jacfwd``.

    Raises
    ------
    ValueError
        For a shot vector (its results are one per shot group), or without a device.
    """
    qfunc, device = _qfunc_and_device(qnode_or_qfunc, device)
    shots = _shots(qnode_or_qfunc, device)
    if shots.has_partitioned_shots:  # one result per shot group, not one array
        raise ValueError(
            f"shots={shots} is a shot vector, and circuit_function returns one (batch, "
            "n_outputs) array: give one number of shots, or call the QNode itself"
        )
    if isinstance(qnode_or_qfunc, qml.QNode) and (reason := _qnode_only(qnode_or_qfunc)):
        return _through_the_qnode(qnode_or_qfunc, reason)
    func = qnode_or_qfunc.func if isinstance(qnode_or_qfunc, qml.QNode) else qfunc
    # one table per structure: eager calls and new traces (batch sizes) reuse its plans
    tables: BoundedCache[tuple, AngleTable] = BoundedCache(16)

    def f(*args, **kwargs):
        import jax.numpy as jnp

        tape = _record(qfunc, args, kwargs)
        batch = tape.batch_size
        rows, skeleton, slots, constants = _angle_table(tape, batch or 1, shots)
        key = (structure_key(skeleton), tuple(slots), constants)
        table = tables.get_or_build(key, lambda: AngleTable(skeleton, slots, device, func))
        dtype = jnp.result_type(float)
        run = _differentiable_run(table, dtype)
        # without gate angles nothing depends on the arguments: values only
        out = run(*(r.astype(dtype) for r in rows)) if slots else _values(table, dtype, batch or 1)
        return out if batch else out[0]

    return f


def _qfunc_and_device(qnode_or_qfunc, device):
    if isinstance(qnode_or_qfunc, qml.QNode):
        qnode = qnode_or_qfunc
        if device is not None and device is not qnode.device:
            raise ValueError("give a device only with a quantum function, not with a QNode")
        return qnode.func, qnode.device
    if device is None:
        raise ValueError(
            "give the device to run on: circuit_function(qfunc, qml.device('qstore.router', "
            "wires=n)), or pass a QNode"
        )
    return qnode_or_qfunc, device


def _shots(qnode_or_qfunc: Callable, device: qml.devices.Device) -> qml.measurements.Shots:
    """The QNode's shots, or for a quantum function the device's (PennyLane's older
    ``qml.device(..., shots=)``)."""
    if isinstance(qnode_or_qfunc, qml.QNode):
        return qnode_or_qfunc.shots
    return qml.measurements.Shots(getattr(device, "shots", None))


def _qnode_only(qnode: qml.QNode) -> str | None:
    """Why the angle table cannot run a QNode's calls, or ``None``."""
    if refusal := shots_refusal(qnode):
        return f"shots={qnode.shots}: {refusal.reason}"
    if len(qnode.compile_pipeline):
        return "the QNode carries transforms, which the angle table would skip"
    return None


def _through_the_qnode(qnode: qml.QNode, reason: str) -> Callable:
    """``f`` for a QNode the angle table cannot run: the QNode itself (PennyLane's JAX
    interface, its own derivative method), its results laid out as ``f``'s. The first
    call warns, naming ``reason``."""
    import jax.numpy as jnp

    warned = threading.Event()

    def f(*args, **kwargs):
        if not warned.is_set():
            warned.set()
            warnings.warn(
                f"circuit_function: {reason}; its calls go through the QNode (PennyLane's "
                "JAX interface: a host call per circuit for derivatives, not one per batch)",
                CompiledPathWarning,
                stacklevel=2,
            )
        batch = qml.tape.make_qscript(qnode.func)(*args, **kwargs).batch_size
        results = qnode(*args, **kwargs)
        parts = results if isinstance(results, (tuple, list)) else (results,)
        out = jnp.concatenate([jnp.reshape(r, (batch or 1, -1)) for r in parts], axis=1)
        return out if batch else out[0]

    return f


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


def _angle_table(tape: QuantumScript, batch: int, shots: qml.measurements.Shots):
    """The ``K`` rows of ``(batch,)`` angles (weights repeated per sample), the tape's
    skeleton (with ``shots``), the rows' places among its parameters (every angle JAX
    computed or an array gave), and the scalar constants that stay in the skeleton."""
    import jax
    import jax.numpy as jnp

    values = [p for op in tape.operations for p in op.data]
    slots = [j for j, p in enumerate(values) if isinstance(p, jax.Array) or np.ndim(p)]
    for j in slots:
        if jnp.iscomplexobj(values[j]):
            raise TypeError(f"complex gate parameter {values[j]}: gate angles must be real")
    rows = [jnp.broadcast_to(jnp.real(values[j]), (batch,)) for j in slots]
    rows_at = set(slots)
    params = [0.0 if j in rows_at else p for j, p in enumerate(values)]
    skeleton = QuantumScript(tape.operations, tape.measurements, shots=shots).bind_new_parameters(
        params, list(range(len(values)))
    )
    constants = tuple(float(p) for j, p in enumerate(values) if j not in rows_at)
    return rows, skeleton, slots, constants


def _is_traced(value) -> bool:
    import jax

    return isinstance(value, jax.core.Tracer)


def _values(table: AngleTable, dtype, batch: int):
    """A circuit without gate angles: its values, a constant."""
    import jax

    return jax.pure_callback(
        lambda: table.values(np.zeros((0, batch))).astype(dtype),
        jax.ShapeDtypeStruct((batch, table.n_outputs), dtype),
    )


def _differentiable_run(table: AngleTable, dtype) -> Callable:
    """``*rows (B,) -> (B, n_outputs)`` for the table's ``K`` rows, its tangent map a
    linear primitive. The rows come one by one so that the JVP sees which tangents are
    zero (rows JAX does not differentiate: inputs, under ``grad`` of the weights); with
    shots those rows are not shifted (:meth:`AngleTable.rows`)."""
    import jax
    import jax.numpy as jnp
    from jax.custom_derivatives import SymbolicZero

    def host(method):
        """``method`` (``(K, B) -> (B, O)``) on the host, the angles' mapped axes folded."""

        def call(angles):
            shape = jax.ShapeDtypeStruct((angles.shape[-1], table.n_outputs), dtype)
            function = partial(folded_values, method, dtype=dtype)
            return jax.pure_callback(function, shape, angles, vmap_method="broadcast_all")

        return call

    values = host(table.values)
    run = jax.custom_jvp(lambda *rows: values(jnp.stack(rows)))

    def _first_order(primals, tangents):
        needed = tuple(type(t) is not SymbolicZero for t in tangents)
        view = table.rows(needed)
        angles = jnp.stack(primals)
        d_angles = jnp.stack(
            [t if n else jnp.zeros_like(p) for p, t, n in zip(primals, tangents, needed)]
        )
        return _kept(view, host)(angles), angle_jvp(view, angles, d_angles)

    run.defjvp(_first_order, symbolic_zeros=True)
    return run


def _kept(view, host) -> Callable:
    """The forward pass of a derivative, which keeps its states for the VJP a reverse
    pass asks for; its own derivative (second order) refuses."""
    import jax

    kept = jax.custom_jvp(host(view.forward))

    @kept.defjvp
    def _second_order(primals, tangents):
        raise NotImplementedError(SECOND_ORDER_MESSAGE)

    return kept
