"""Backends that simulate noise: density-matrix simulators the router can route to.

``default.mixed`` applies PennyLane's channels to a density matrix (``4**n``
entries), computes with the ML framework's tensors (so it backpropagates, channel
parameters included) and samples. ``auto`` adds it for circuits with channels only:
a pure circuit always runs faster on a state-vector backend. Named explicitly in the
config it takes any circuit, and with ``noise_model`` it rehearses a hardware run
(see :mod:`qstore_pl.router.execution.rehearsal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pennylane.devices import default_mixed

from qstore_pl.router.registry.sizing import max_wires_for_memory
from qstore_pl.router.routing.capabilities import BackendCapabilities
from qstore_pl.router.routing.noise import DensityMatrixTimeModel
from qstore_pl.router.routing.spec import BackendSpec

#: Backend types that simulate density matrices.
DENSITY_MATRIX_TYPES = frozenset({"default.mixed"})
_DEFAULT_MIXED_MAX_WIRES = 23  # default.mixed refuses more

# From benchmarks/bench_noise.py on the loaded 2-core x86 machine (noisy W1, batch 32:
# 24 ms per circuit at 4 qubits, mostly per-gate overhead; 0.69 s at 8 qubits); a
# density matrix on n qubits counts as a 2n-qubit state. Not calibrated: the
# calibration workload is a pure circuit.
DEFAULT_MIXED_TIME_MODEL = DensityMatrixTimeModel(
    per_batch=3e-4,
    per_circuit=3e-4,
    per_gate=1.5e-4,
    per_gate_amplitude=5e-8,
    per_measurement_amplitude=1e-8,
    vectorised=False,
)


def build_default_mixed(options: Mapping[str, Any]):
    """Capabilities and time model of ``default.mixed``."""
    # a density matrix on n qubits is 4**n entries: half the wires of a state vector
    widest = max_wires_for_memory(16, fraction=0.25) // 2
    caps = BackendCapabilities(
        max_wires=min(widest, _DEFAULT_MIXED_MAX_WIRES),
        operations=None,  # its own preprocessing decomposes what it lacks
        observables=None,
        # qml.state() of a noisy circuit has no state vector: default.mixed would give
        # the density matrix, which a caller of qml.state() does not expect
        measurements=frozenset({"expval", "var", "probs", "density_matrix"}),
        sampled_measurements=frozenset({"expval", "var", "probs", "sample", "counts"}),
        dtype="complex128",
        derivatives={"parameter-shift": frozenset({"expval"})},
        backprop=True,
        channels=frozenset(default_mixed.channels),
    )
    return caps, DEFAULT_MIXED_TIME_MODEL


def noise_only(spec: BackendSpec) -> BackendSpec:
    """``spec`` kept for circuits with channels (how ``auto`` adds density-matrix backends)."""
    return replace(spec, capabilities=replace(spec.capabilities, noise_only=True))
