"""What a backend can run, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from qstore_pl.router.routing.workload import WorkloadFeatures

#: Precision levels, from least to most precise.
PRECISIONS = ("single", "double")
_DTYPE_PRECISION = {"complex64": "single", "complex128": "double"}


@dataclass(frozen=True)
class BackendCapabilities:
    """Static description of what one backend can execute.

    Attributes
    ----------
    max_wires : int
        Widest circuit the backend accepts.
    operations : frozenset[str] or None
        Gate names executed natively. ``None`` means any gate that has a matrix on at
        most ``max_matrix_wires`` wires.
    max_matrix_wires : int
        Widest gate given by its matrix, when ``operations`` is ``None``; otherwise
        the widest ``QubitUnitary`` (or controlled one's target) applied whole.
    observables : frozenset[str] or None
        Observable names (leaves and composites); ``None`` means any observable.
    measurements, sampled_measurements : frozenset[str] or None
        Measurement kinds (see :func:`~qstore_pl.router.routing.workload.measurement_kind`)
        available analytically and with finite shots; ``None`` means any.
    analytic, finite_shots : bool
        Whether exact results and sampled results are available.
    differentiable_operations : frozenset[str] or None
        Gates the adjoint method can differentiate; ``None`` means any gate with a
        generator.
    derivatives : Mapping[str, frozenset[str]]
        Derivative method (``"adjoint"``, ``"parameter-shift"``) → measurement kinds it
        can differentiate, in order of preference.
    dtype : str
        State-vector dtype, ``"complex64"`` or ``"complex128"``.
    broadcasting : bool
        Whether parameter-broadcast tapes run natively.
    broadcast_derivatives : bool
        Whether vector-Jacobian products of parameter-broadcast tapes (and stacked
        cotangents) are computed natively; otherwise the router splits them.
    keeps_forward_states : bool
        Whether the backend keeps the final states of its last forward execution, so
        that derivatives of the same circuits that follow it skip the forward pass.
    backprop : bool
        Whether it computes with the ML framework's tensors, so that the framework can
        differentiate through the simulation (backpropagation).
    channels : frozenset[str]
        Noise channels it simulates (a density-matrix backend); empty: noiseless.
    noise_only : bool
        Whether it takes circuits with channels only (a density-matrix backend that
        ``auto`` adds: for pure circuits a state-vector backend is always faster).
    """

    max_wires: int
    operations: frozenset[str] | None = None
    max_matrix_wires: int = 30
    observables: frozenset[str] | None = None
    measurements: frozenset[str] | None = frozenset(
        {"expval", "var", "probs", "state", "density_matrix"}
    )
    sampled_measurements: frozenset[str] | None = frozenset(
        {"expval", "var", "probs", "sample", "counts"}
    )
    analytic: bool = True
    finite_shots: bool = True
    differentiable_operations: frozenset[str] | None = None
    derivatives: Mapping[str, frozenset[str]] = field(default_factory=dict)
    dtype: str = "complex128"
    broadcasting: bool = False
    broadcast_derivatives: bool = False
    keeps_forward_states: bool = False
    backprop: bool = False
    channels: frozenset[str] = frozenset()
    noise_only: bool = False

    def __post_init__(self):
        if self.dtype not in _DTYPE_PRECISION:
            raise ValueError(f"dtype must be one of {sorted(_DTYPE_PRECISION)}, got {self.dtype!r}")

    @property
    def precision(self) -> str:
        """``"single"`` or ``"double"``."""
        return _DTYPE_PRECISION[self.dtype]

    def derivative_method(self, features: WorkloadFeatures) -> str | None:
        """Preferred derivative method for the workload, or ``None`` if there is none."""
        for method, kinds in self.derivatives.items():
            if features.measurements <= kinds:
                return method
        return None

    def missing(self, features: WorkloadFeatures, precision: str = "single") -> list[str]:
        """Reasons why this backend cannot run a workload (empty when it can).

        Parameters
        ----------
        features : WorkloadFeatures
            The workload.
        precision : {"single", "double"}
            The least precision the caller accepts.
        """
        reasons = []
        if features.num_wires > self.max_wires:
            reasons.append(f"{features.num_wires} wires > max {self.max_wires}")
        if self.operations is None:
            if features.max_gate_wires > self.max_matrix_wires:
                reasons.append(
                    f"a {features.max_gate_wires}-wire gate > max {self.max_matrix_wires}"
                )
        else:
            unknown = features.operations - self.operations
            if unknown:
                reasons.append(f"unsupported operations {sorted(unknown)}")
            if features.max_dense_wires > self.max_matrix_wires:
                reasons.append(
                    f"a {features.max_dense_wires}-wire matrix gate > max {self.max_matrix_wires}"
                )
        unknown_channels = features.channels - self.channels
        if unknown_channels:
            kind = "noiseless (pure states)" if not self.channels else "unsupported"
            reasons.append(f"{kind}: cannot apply {sorted(unknown_channels)}")
        if self.noise_only and not features.channels:
            reasons.append("a noise simulator, kept for circuits with noise")
        if self.observables is not None:
            unknown = features.observables - self.observables
            if unknown:
                reasons.append(f"unsupported observables {sorted(unknown)}")
        supported = self.measurements if features.shots is None else self.sampled_measurements
        unknown = features.measurements - supported if supported is not None else frozenset()
        if unknown:
            mode = "analytic" if features.shots is None else "finite-shot"
            reasons.append(f"unsupported {mode} measurements {sorted(unknown)}")
        if features.shots is None and not self.analytic:
            reasons.append("needs shots (no analytic mode)")
        if features.shots is not None and not self.finite_shots:
            reasons.append("analytic only (no sampling)")
        if PRECISIONS.index(self.precision) < PRECISIONS.index(precision):
            reasons.append(f"{self.dtype} below the requested {precision} precision")
        elif features.differenced and self.precision != "double":
            reasons.append(
                f"{self.dtype}: finite differences need complex128 (single-precision "
                "rounding over a small step gives wrong derivatives)"
            )
        if features.backprop and not self.backprop:
            reasons.append("cannot backpropagate (computes with NumPy, not the ML framework)")
        if features.derivative is not None:
            method = self.derivative_method(features)
            if method is None:
                reasons.append(f"no derivative method for {sorted(features.measurements)}")
            elif method == "adjoint" and self.differentiable_operations is not None:
                unknown = features.trainable_operations - self.differentiable_operations
                if unknown:
                    reasons.append(f"adjoint cannot differentiate {sorted(unknown)}")
        return reasons
