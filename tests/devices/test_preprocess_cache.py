"""Skipping preprocessing for known structures: only what it left alone, nothing else."""

from __future__ import annotations

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane.transforms.core import CompilePipeline, transform

from qstore_pl.devices.preprocess_cache import skip_known_structures

CALLS: list[str] = []


@transform
def counted(tape):
    CALLS.append("counted")
    return (tape,), lambda results: results[0]


@transform
def refuse_hadamard(tape):
    if any(op.name == "Hadamard" for op in tape.operations):
        raise qml.exceptions.DeviceError("no Hadamard here")
    return (tape,), lambda results: results[0]


@transform
def double_results(tape):
    # the same tape back, but its result changes: must never be skipped
    return (tape,), lambda results: 2 * results[0]


def pipeline(*transforms):
    program = CompilePipeline()
    for t in transforms:
        program.add_transform(t)
    return skip_known_structures(program)


def w1(x, w, *, measure=qml.Z):
    return qml.tape.QuantumScript(
        [qml.RX(x, 0), qml.RY(w, 1), qml.CNOT([0, 1])], [qml.expval(measure(1))]
    )


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_a_structure_left_alone_skips_the_pipeline_the_next_time():
    program = pipeline(counted)
    first, second = w1(0.1, 0.2), w1(0.3, 0.4)
    assert program([first])[0][0] is first
    (out,), post = program([second])
    assert out is second and post([5.0]) == (5.0,)
    assert CALLS == ["counted"]


@pytest.mark.parametrize(
    "other",
    [
        w1(0.1, 0.2, measure=qml.X),  # another measurement
        w1(np.array([0.1, 0.2]), 0.2),  # broadcast
        w1(torch.tensor(0.1), 0.2),  # another interface
        w1(0.1, torch.tensor(0.2, requires_grad=True)),  # other parameter types
    ],
)
def test_anything_that_can_change_the_outcome_runs_the_pipeline_again(other):
    program = pipeline(counted)
    program([w1(0.1, 0.2)])
    program([other])
    assert CALLS == ["counted", "counted"]


def test_other_trainable_parameters_run_the_pipeline_again():
    program = pipeline(counted)
    program([w1(0.1, 0.2)])
    tape = w1(0.3, 0.4)
    tape.trainable_params = [1]
    program([tape])
    assert CALLS == ["counted", "counted"]


def test_errors_are_raised_every_time():
    program = pipeline(refuse_hadamard)
    bad = qml.tape.QuantumScript([qml.Hadamard(0)], [qml.expval(qml.Z(0))])
    for _ in range(2):
        with pytest.raises(qml.exceptions.DeviceError, match="no Hadamard"):
            program([bad])


def test_a_postprocessing_step_is_never_skipped():
    program = pipeline(double_results)
    for _ in range(3):
        (_,), post = program([w1(0.1, 0.2)])
        assert post([1.5]) == (3.0,)


def test_decompositions_run_for_every_call_with_their_own_parameters():
    dev = qml.device("qstore.router", wires=2, router_config={"backends": ["qstore.batched"]})
    ref = qml.device("default.qubit", wires=2)

    def circuit(angles):
        qml.Rot(*angles, wires=0)  # decomposed by the router for the adjoint method
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1) @ qml.X(0))

    ours, theirs = qml.QNode(circuit, dev), qml.QNode(circuit, ref)
    for seed in range(3):
        angles = qml.numpy.array(np.random.default_rng(seed).uniform(0, 3, 3), requires_grad=True)
        assert np.allclose(ours(angles), theirs(angles), atol=1e-12)
        assert np.allclose(qml.grad(ours)(angles), qml.grad(theirs)(angles), atol=1e-10)
