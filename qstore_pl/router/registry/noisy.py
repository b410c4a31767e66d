"""Backends that simulate noise: density-matrix simulators the router can route to.

``qstore.aer`` (the ``qiskit`` extra) drives Qiskit Aer directly: its C++ density
matrix gives default.mixed's values from 5-6 qubits on much faster, and its
trajectory method samples circuits with shots at a state vector's memory.

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
from qstore_pl.router.routing.noise import DensityMatrixTimeModel, TrajectoryTimeModel
from qstore_pl.router.routing.spec import BackendSpec

#: Backend types that simulate noise (``auto`` keeps them for noisy circuits).
DENSITY_MATRIX_TYPES = frozenset({"default.mixed", "qstore.aer"})
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


# From the same benchmark through qstore.aer (noisy W1, batch 32, on the loaded 2-core
# machine: 13 ms per circuit at 4 qubits, mostly writing the Qiskit circuit in Python;
# 0.18 s at 8 qubits, where Aer's C++ density matrix is ~20x default.mixed's NumPy).
_AER_COSTS: dict[str, Any] = {
    "per_batch": 5e-3,
    "per_circuit": 1e-3,
    "per_gate": 6e-5,
    "per_gate_amplitude": 1e-8,
    "per_measurement_amplitude": 1e-9,
    "vectorised": False,
}
AER_DENSITY_MATRIX_TIME_MODEL = DensityMatrixTimeModel(**_AER_COSTS)
# Trajectories: the same costs, one state-vector simulation per shot.
AER_TRAJECTORY_TIME_MODEL = TrajectoryTimeModel(**_AER_COSTS)


def build_aer(options: Mapping[str, Any]):
    """Capabilities and time model of ``qstore.aer`` (Qiskit Aer driven directly).

    ``method="density_matrix"`` is exact (analytic) and samples with shots, as
    default.mixed does, without backpropagation; ``method="statevector"`` (Monte Carlo
    trajectories, one per shot) takes only circuits with shots, and is as wide as a
    state vector.
    """
    from qstore_pl.devices.aer.device import METHODS

    method = options.get("method", "density_matrix")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    trajectories = method == "statevector"
    # Aer's density matrix is 4**n complex128; a trajectory's state 2**n
    widest = max_wires_for_memory(16, fraction=0.25)
    caps = BackendCapabilities(
        max_wires=widest if trajectories else widest // 2,
        operations=None,  # its own preprocessing decomposes what Aer lacks
        observables=None,
        measurements=frozenset({"expval", "var", "probs", "density_matrix"}),
        sampled_measurements=frozenset({"expval", "var", "probs", "sample", "counts"}),
        analytic=not trajectories,
        dtype="complex128",
        derivatives={"parameter-shift": frozenset({"expval", "probs"})},
        channels=frozenset(default_mixed.channels),
    )
    model = AER_TRAJECTORY_TIME_MODEL if trajectories else AER_DENSITY_MATRIX_TIME_MODEL
    return caps, model


def noise_only(spec: BackendSpec) -> BackendSpec:
    """``spec`` kept for circuits with channels (how ``auto`` adds density-matrix backends)."""
    return replace(spec, capabilities=replace(spec.capabilities, noise_only=True))
