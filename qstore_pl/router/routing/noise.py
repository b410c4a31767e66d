"""Noisy circuits as the router sees them: which gates are channels, how long a
density-matrix simulation takes, and what to do when no backend simulates noise.

A circuit with a channel (``qml.DepolarizingChannel``, ``qml.AmplitudeDamping``, what
``qml.add_noise`` inserts) maps density matrices to density matrices; a state-vector
backend cannot run it, whatever its speed. Routing keeps that rule as plain data:
:attr:`WorkloadFeatures.channels` against :attr:`BackendCapabilities.channels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pennylane.operation import Channel, Operator

from qstore_pl.router.routing.time_model import TimeModel
from qstore_pl.router.routing.workload import WorkloadFeatures

#: How to get a backend that runs channels, for refusals.
NOISE_FIX = (
    "add 'default.mixed' or 'qstore.aer' (density matrix; 'qstore.aer' needs the qiskit "
    "extra) to 'backends', or use 'auto', which includes them for circuits with noise"
)


def is_channel(op: Operator) -> bool:
    """Whether ``op`` is a noise channel (a map on density matrices, not a unitary)."""
    return isinstance(op, Channel)


@dataclass(frozen=True)
class DensityMatrixTimeModel(TimeModel):
    """A :class:`TimeModel` for density-matrix simulators.

    An ``n``-qubit density matrix has ``4**n`` entries and every gate ``U rho U^dagger``
    acts on both of its indices, so it costs what the same gates cost on a ``2n``-qubit
    state vector; a channel with ``k`` Kraus operators costs about ``k`` such gates,
    which the gate count (channels included) approximates.
    """

    def forward_seconds(self, features: WorkloadFeatures) -> float:
        return super().forward_seconds(replace(features, num_wires=2 * features.num_wires))


@dataclass(frozen=True)
class TrajectoryTimeModel(TimeModel):
    """A :class:`TimeModel` for Monte Carlo trajectories, one per shot.

    Every shot evolves its own state vector with randomly drawn Kraus operators, so the
    simulation is paid once per shot (an analytic request has no trajectory count: it
    is priced as one, though such a backend refuses it).
    """

    def forward_seconds(self, features: WorkloadFeatures) -> float:
        single = super().forward_seconds(features)
        shots = features.shots or 1
        simulation = (
            features.batch_size
            * 2.0**features.num_wires
            * (features.num_gates + features.dense_gate_work)
            * self.per_gate_amplitude
        )
        return single + (shots - 1) * simulation


def noise_fix(features: WorkloadFeatures, channel_sets: Sequence[frozenset[str]]) -> str | None:
    """The fix to name when a noisy workload finds no backend because none of them
    simulates its channels (``channel_sets``: each backend's channels); else ``None``."""
    if not features.channels:
        return None
    if any(features.channels <= channels for channels in channel_sets):
        return None  # some backend has the channels: another reason rules it out
    return NOISE_FIX
