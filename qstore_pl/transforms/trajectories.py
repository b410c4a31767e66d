"""Monte Carlo trajectories: noisy circuits as batches of pure circuits.

A Pauli channel (``DepolarizingChannel``, ``BitFlip``, ``PhaseFlip``) applies I, X, Y
or Z with fixed probabilities, so a noisy circuit's expectation value is the mean over
random draws of those Paulis of a *pure* circuit's value. :func:`trajectories` turns
every channel into ``RZ(b) RX(a)`` with angles drawn per trajectory (``(0, 0)`` = I,
``(pi, 0)`` = X, ``(pi, pi)`` = Y up to phase, ``(0, pi)`` = Z) and broadcasts the
circuit over ``repetitions`` trajectories: one state-vector batch (on the router, the
batched engine), ``2**n`` amplitudes per trajectory instead of a ``4**n`` density
matrix. Identical trajectories are simulated once and weighted by how often they were
drawn (weak noise mostly draws no error at all: at p = 0.01 on 32 channels, 72% of
trajectories are the noiseless circuit), which gives the same mean with a fraction of
the circuits; with shots every trajectory is sampled, identical or not. The ML
framework differentiates through the mean as through any postprocessing, so gradients
work in every interface and with every ``diff_method``.

Statistics: each trajectory's value is exact (analytic QNode), so the estimate's
standard error is ``std(values) / sqrt(repetitions)``, at most that of
``repetitions`` shots; with shots ``s`` on the QNode every trajectory is sampled
``s`` times (``s = 1`` is TFQ's ``sample_based=True``: one shot per trajectory).
Trajectories are opt-in: the router never turns an exact request into an estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.tape import QuantumScript
from pennylane.transforms.core import transform

#: Pauli channels: name -> probabilities of (I, X, Y, Z) from the channel's parameter.
PAULI_CHANNELS: dict[str, Callable[[float], tuple[float, float, float, float]]] = {
    "DepolarizingChannel": lambda p: (1 - p, p / 3, p / 3, p / 3),
    "BitFlip": lambda p: (1 - p, p, 0.0, 0.0),
    "PhaseFlip": lambda p: (1 - p, 0.0, 0.0, p),
}
#: (RX angle, RZ angle) that apply I, X, Y (up to phase) and Z.
_PAULI_ANGLES = np.array([[0.0, 0.0], [np.pi, 0.0], [np.pi, np.pi], [0.0, np.pi]])


@transform
def trajectories(tape: QuantumScript, repetitions: int = 100, seed=None):
    """Estimate a noisy circuit by the mean over ``repetitions`` pure trajectories.

    Parameters
    ----------
    tape : QNode or QuantumScript
        A circuit whose channels are Pauli channels (depolarising, bit flip, phase
        flip) and that measures expectation values or probabilities.
    repetitions : int
        Trajectories per circuit (per input of a broadcast batch).
    seed : int or numpy Generator, optional
        Fix the draws: every call then uses the same trajectories (common random
        numbers, which keep a training loss smooth); ``None`` draws anew every call.

    Raises
    ------
    ValueError
        For another channel (amplitude damping is not a Pauli channel: use
        default.mixed), another measurement, a trainable channel parameter, or
        ``repetitions < 1``.

    **Example**

    >>> dev = qml.device("qstore.router", wires=8)
    >>> noisy = qstore_pl.trajectories(qml.QNode(circuit, dev), repetitions=200)
    """
    if int(repetitions) != repetitions or repetitions < 1:
        raise ValueError(f"repetitions must be a positive integer, got {repetitions!r}")
    for mp in tape.measurements:
        if not isinstance(mp, (ExpectationMP, ProbabilityMP)):
            raise ValueError(
                f"trajectories estimate expval and probs, not {type(mp).__name__}: the mean "
                "of per-trajectory values is not that measurement; run the circuit exactly "
                "on default.mixed (qstore.router does) instead"
            )
    rng = np.random.default_rng(seed)
    batch = tape.batch_size
    inputs = batch or 1
    channels = [op for op in tape.operations if isinstance(op, qml.operation.Channel)]
    if not channels:  # a pure circuit: every trajectory is the circuit itself
        return [tape], lambda results: results[0]
    draws = np.stack([_draws(op, inputs * repetitions, rng) for op in channels], axis=1).reshape(
        inputs, repetitions, len(channels)
    )
    # sampled trajectories must each be sampled: identical ones are merged only when exact
    owner, kept, weights = _all(draws) if tape.shots else _distinct(draws)
    angles = _PAULI_ANGLES[kept]  # (distinct trajectories, channels, 2)
    ops, k = [], 0
    for op in tape.operations:
        if isinstance(op, qml.operation.Channel):
            ops += [qml.RZ(angles[:, k, 1], op.wires), qml.RX(angles[:, k, 0], op.wires)]
            k += 1
        elif batch:
            ops.append(_gathered(op, owner))
        else:
            ops.append(op)
    unravelled = tape.copy(operations=ops)

    def mean(results):
        result = results[0]
        if len(tape.measurements) == 1:
            return _weighted_mean(result, weights, batch)
        return tuple(_weighted_mean(r, weights, batch) for r in result)

    return [unravelled], mean


def _draws(op, total: int, rng: np.random.Generator) -> np.ndarray:
    """Which Pauli (0-3: I, X, Y, Z) ``op`` applies in each of ``total`` trajectories."""
    probabilities = PAULI_CHANNELS.get(op.name)
    if probabilities is None or len(op.wires) != 1:
        raise ValueError(
            f"trajectories sample Pauli channels ({', '.join(PAULI_CHANNELS)}), not "
            f"{op.name}: run the circuit exactly on default.mixed (qstore.router routes it "
            "there) instead"
        )
    if any(qml.math.requires_grad(d) for d in op.data):
        raise ValueError(
            f"the strength of {op.name} is trainable, and sampled Paulis have no gradient "
            "in it: differentiate with default.mixed (qstore.router routes it there)"
        )
    weights = np.asarray(probabilities(float(qml.math.unwrap(op.data[0]))), dtype=float)
    return rng.choice(4, size=total, p=weights / weights.sum())


def _distinct(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct trajectories of each input, to simulate once each.

    Weak noise draws the same Paulis (mostly none) again and again: at p = 0.01 on 32
    channels, 72% of trajectories have no error at all. Simulating each distinct one
    once and weighting it by how often it was drawn gives the same mean, exactly.

    Parameters
    ----------
    draws : (inputs, repetitions, channels) int array

    Returns
    -------
    owner : (T,) int
        The input of each distinct trajectory.
    kept : (T, channels) int
        Its draws.
    weights : (inputs, T) float
        ``weights[b, t]``: the share of input ``b``'s repetitions that drew trajectory
        ``t`` (0 for another input's).
    """
    inputs, repetitions, _ = draws.shape
    owners, kept, counts = [], [], []
    for b in range(inputs):
        unique, count = np.unique(draws[b], axis=0, return_counts=True)
        owners.append(np.full(len(unique), b))
        kept.append(unique)
        counts.append(count)
    owner = np.concatenate(owners)
    weights = np.zeros((inputs, len(owner)))
    weights[owner, np.arange(len(owner))] = np.concatenate(counts) / repetitions
    return owner, np.concatenate(kept), weights


def _all(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every trajectory, each of weight ``1 / repetitions`` (see :func:`_distinct`)."""
    inputs, repetitions, channels = draws.shape
    owner = np.repeat(np.arange(inputs), repetitions)
    weights = np.kron(np.eye(inputs), np.full(repetitions, 1 / repetitions))
    return owner, draws.reshape(inputs * repetitions, channels), weights


def _gathered(op, owner: np.ndarray):
    """``op`` with each broadcast parameter taken for the input of each trajectory."""
    params = []
    for index, param in enumerate(op.data):
        if qml.math.ndim(param) > op.ndim_params[index]:
            param = qml.math.take(param, owner, axis=0)
        params.append(param)
    return qml.ops.functions.bind_new_parameters(op, params)


def _weighted_mean(result, weights: np.ndarray, batch: int | None):
    """Each input's mean over its trajectories: ``weights @ result``."""
    weights = qml.math.cast_like(qml.math.convert_like(weights, result), result)
    mean = qml.math.tensordot(weights, result, axes=[[1], [0]])
    return mean[0] if batch is None else mean
