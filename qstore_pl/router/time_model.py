"""Time models: how long a backend takes for a workload.

A model is a handful of coefficients: fixed costs per batch and per circuit, and the
cost of applying one gate to one amplitude. Derivatives multiply the simulation part
by the number of state-vector sweeps the method needs. The defaults of each backend
are rough figures from a 2-core x86 machine; :mod:`qstore_pl.router.calibration`
replaces them with measurements of the machine at hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from qstore_pl.router.workload import WorkloadFeatures


@dataclass(frozen=True)
class TimeModel:
    """Estimated seconds for a workload on one backend.

    Attributes
    ----------
    per_batch : float
        Fixed cost of one call (seconds).
    per_circuit : float
        Fixed cost per circuit execution, such as translation and Python overhead.
    per_gate_amplitude : float
        Seconds to apply one gate to one amplitude of the state vector.
    per_measurement_amplitude : float
        Seconds to evaluate one measurement on one amplitude.
    parallel_circuits : bool
        Whether circuits of a batch run concurrently, so the fixed per-circuit cost is
        shared (vectorised engines).
    """

    per_batch: float = 1e-4
    per_circuit: float = 1e-4
    per_gate_amplitude: float = 1e-9
    per_measurement_amplitude: float = 1e-9
    parallel_circuits: bool = False

    def forward_seconds(self, features: WorkloadFeatures) -> float:
        """Seconds for one forward execution of every circuit in the group."""
        amplitudes = 2.0**features.num_wires
        gate_weight = features.num_1q_gates + 2 * features.num_2q_gates
        gate_weight += 4 * features.num_multi_gates
        per_circuit_sim = amplitudes * (
            gate_weight * self.per_gate_amplitude
            + features.num_measurements * self.per_measurement_amplitude
        )
        shots = features.shots or 0
        per_circuit_sim += shots * 1e-8 * features.num_wires
        return (
            self.per_batch
            + self.per_circuit * features.batch_size
            + per_circuit_sim * features.batch_size
        )

    def estimate(self, features: WorkloadFeatures, derivative_method: str | None) -> float:
        """Seconds for the workload, derivatives included when it asks for them.

        Parameters
        ----------
        features : WorkloadFeatures
            The workload.
        derivative_method : str or None
            ``"adjoint"`` or ``"parameter-shift"`` when ``features.derivative`` is set.
        """
        forward = self.forward_seconds(features)
        if features.derivative is None or derivative_method is None:
            return forward
        if derivative_method == "adjoint":
            # forward sweep + backward sweep; a full Jacobian needs one backward
            # sweep per measurement, a VJP only one.
            backward = 2 if features.derivative == "vjp" else 1 + features.num_measurements
            return forward * (1 + backward)
        # parameter-shift: two shifted circuits per trainable parameter, plus forward
        return forward * (1 + 2 * max(features.num_trainable, 1))
