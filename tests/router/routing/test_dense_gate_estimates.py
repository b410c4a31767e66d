"""The router's time model sees how wide a dense matrix is, and who cannot take it.

A dense matrix on ``k`` wires costs ``2**k`` products per amplitude; the estimate for a
10-wire ``QubitUnitary`` on qstore.batched used to equal that of a one-wire gate.
"""

from __future__ import annotations

import itertools

import numpy as np
import pennylane as qml
import pytest

from qstore_pl.router.config import BackendConfig
from qstore_pl.router.registry.builtin import build_spec
from qstore_pl.router.routing.workload import describe

WIRES = 10


def _unitary(k: int) -> np.ndarray:
    d = 2**k
    return np.fft.fft(np.eye(d)) / np.sqrt(d)  # dense and unitary


def _tape(k: int, controlled: bool = False) -> qml.tape.QuantumScript:
    ops = [qml.Hadamard(w) for w in range(WIRES)]
    if controlled:
        ops.append(qml.ControlledQubitUnitary(_unitary(k), wires=[WIRES - 1, *range(k)]))
    else:
        ops.append(qml.QubitUnitary(_unitary(k), wires=range(k)))
    return qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))])


def test_features_count_dense_matrix_work():
    narrow, wide = describe([_tape(2)]), describe([_tape(10)])
    assert (narrow.max_dense_wires, narrow.dense_gate_work) == (2, 0.0)
    assert (wide.max_dense_wires, wide.dense_gate_work) == (10, 2**10 / 4 - 1)
    controlled = describe([_tape(6, controlled=True)])  # the target's matrix counts
    assert (controlled.max_dense_wires, controlled.dense_gate_work) == (6, 2**6 / 4 - 1)
    plain = describe([qml.tape.QuantumScript([qml.MultiRZ(0.1, wires=range(8))])])
    assert (plain.max_dense_wires, plain.dense_gate_work) == (0, 0.0)  # diagonal


@pytest.mark.parametrize("backend", ["qstore.batched", "lightning.qubit"])
def test_estimate_grows_with_matrix_width(backend):
    model = build_spec(BackendConfig(backend, backend)).time_model
    seconds = [model.estimate(describe([_tape(k)]), None) for k in range(1, WIRES + 1)]
    assert seconds[0] == seconds[1]  # one- and two-wire gates are what per-amplitude costs mean
    assert all(b > a for a, b in itertools.pairwise(seconds[1:])), seconds
    # the 10-wire matrix's simulation work is 2**10 / 4 gates' worth on 2**10 amplitudes
    extra = seconds[-1] - seconds[0]
    assert extra == pytest.approx((2**10 / 4 - 1) * 2**WIRES * model.per_gate_amplitude)


def test_explain_shows_the_wider_matrix_cost_and_qsim_limit():
    dev = qml.device("qstore.router", wires=WIRES, backends=["qstore.batched", "qstore.qsim"])

    def estimates(k):
        (decision,) = dev.explain(_tape(k)).decisions
        return {c.backend: c for c in decision.candidates}

    narrow, wide = estimates(2), estimates(10)
    model = next(s.time_model for s in dev.backends if s.name == "qstore.batched")
    extra = wide["qstore.batched"].seconds - narrow["qstore.batched"].seconds
    assert extra == pytest.approx((2**10 / 4 - 1) * 2**WIRES * model.per_gate_amplitude)
    assert narrow["qstore.qsim"].eligible
    assert not wide["qstore.qsim"].eligible  # qsim takes matrices on at most 6 wires
    assert "a 10-wire matrix gate > max 6" in wide["qstore.qsim"].reasons
