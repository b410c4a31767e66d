"""Time models: how long a backend takes for a workload.

A model is a handful of coefficients: fixed costs per call, per circuit and per gate
(interpreter overhead), and the cost of applying one gate to one amplitude of the
state vector (a dense matrix on ``k`` wires counts as ``2**k / 4`` gates there: see
:attr:`~qstore_pl.router.routing.workload.WorkloadFeatures.dense_gate_work`). Derivatives
multiply the forward time by the number of state-vector sweeps the method needs. Each
backend's defaults come from measurements on a 2-core x86 machine; calibration
replaces them with measurements of the machine at hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from qstore_pl.router.routing.workload import WorkloadFeatures


@dataclass(frozen=True)
class TimeModel:
    """Estimated seconds for a workload on one backend.

    Attributes
    ----------
    per_batch : float
        Fixed cost of one call (seconds).
    per_circuit : float
        Fixed cost per circuit.
    per_gate : float
        Fixed cost per gate, independent of the number of qubits (interpreter work).
    per_gate_amplitude : float
        Seconds to apply one gate to one amplitude of the state vector.
    per_measurement_amplitude : float
        Seconds to evaluate one measurement on one amplitude.
    vectorised : bool
        Whether a parameter-broadcast tape pays the per-circuit and per-gate costs once
        for its whole batch rather than once per circuit.
    backward_factor : float
        Cost of one adjoint backward sweep relative to the forward pass.
    """

    per_batch: float = 1e-4
    per_circuit: float = 1e-4
    per_gate: float = 1e-5
    per_gate_amplitude: float = 1e-9
    per_measurement_amplitude: float = 1e-9
    vectorised: bool = False
    backward_factor: float = 2.0

    def forward_seconds(self, features: WorkloadFeatures) -> float:
        """Seconds for one forward execution of every circuit in the group."""
        gates = features.num_gates
        overhead_units = features.num_tapes if self.vectorised else features.batch_size
        overhead = overhead_units * (self.per_circuit + gates * self.per_gate)
        amplitudes = 2.0**features.num_wires
        simulation = amplitudes * (
            (gates + features.dense_gate_work) * self.per_gate_amplitude
            + features.num_measurements * self.per_measurement_amplitude
        )
        sampling = (features.shots or 0) * features.num_wires * 1e-8
        return self.per_batch + overhead + features.batch_size * (simulation + sampling)

    def estimate(
        self, features: WorkloadFeatures, derivative_method: str | None, warm: bool = False
    ) -> float:
        """Seconds for the workload, derivatives included when it asks for them.

        Parameters
        ----------
        features : WorkloadFeatures
            The workload.
        derivative_method : str or None
            ``"adjoint"`` or ``"parameter-shift"`` when ``features.derivative`` is set.
        warm : bool
            Whether the backend already holds the forward states (adjoint derivatives
            then cost the backward sweeps only).
        """
        forward = self.forward_seconds(features)
        if features.derivative is None or derivative_method is None:
            return forward
        if derivative_method == "adjoint":
            # a full Jacobian needs one backward sweep per measurement, a VJP one in all
            sweeps = 1 if features.derivative == "vjp" else features.num_measurements
            return forward * ((0 if warm else 1) + self.backward_factor * sweeps)
        # parameter-shift: two shifted circuits per trainable parameter, plus forward
        return forward * (1 + 2 * max(features.num_trainable, 1))
