"""Workload features: a plain description of a group of circuits.

Routing policies and time models only ever see these features, never PennyLane
devices, so that a policy can be tested, explained and replaced on its own.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import pennylane as qml
from pennylane.measurements import (
    CountsMP,
    DensityMatrixMP,
    ExpectationMP,
    MeasurementProcess,
    ProbabilityMP,
    SampleMP,
    StateMP,
    VarianceMP,
)
from pennylane.operation import Channel
from pennylane.tape import QuantumScript

#: Derivative requests a workload can carry.
DERIVATIVE_KINDS = (None, "jacobian", "vjp")


@dataclass(frozen=True)
class WorkloadFeatures:
    """What the router knows about a group of circuits that share one structure.

    Attributes
    ----------
    num_wires : int
        Width of the circuits.
    depth : int
        Circuit depth (layers of gates acting on disjoint wires).
    num_1q_gates, num_2q_gates, num_multi_gates : int
        Gate counts per circuit by number of wires acted on.
    max_gate_wires : int
        Widest gate in the circuit.
    max_dense_wires : int
        Widest gate that simulators apply as a dense matrix (``QubitUnitary``, and the
        target of a controlled one); 0 if none.
    dense_gate_work : float
        What such matrices add to the gate count, in gates' worth of work per
        amplitude: a dense matrix on ``k`` wires costs ``2**k`` products per
        amplitude, ``2**k / 4`` gates on one or two wires (what the time models'
        per-amplitude cost is measured on), so it adds ``2**k / 4 - 1``.
    num_parameters, num_trainable : int
        Gate parameters per circuit, and how many of them need derivatives.
    operations, trainable_operations, observables, measurements : frozenset[str]
        Names of the gates, of the gates with trainable parameters, of the observables
        (leaves and composites such as ``Sum``) and the kinds of measurement (see
        :func:`measurement_kind`).
    channels : frozenset[str]
        Names of the noise channels (``qml.DepolarizingChannel``, ...), which are not
        in ``operations``: empty for a circuit without noise.
    num_measurements : int
        Measurements per circuit.
    shots : int or None
        Total shots per circuit; ``None`` for analytic results.
    batch_size : int
        Number of circuit executions in the group, parameter broadcasting included.
    num_tapes : int
        Number of tapes in the group (fewer than ``batch_size`` when broadcasting).
    derivative : {None, "jacobian", "vjp"}
        Whether the group needs derivatives from the router, and in which form.
    backprop : bool
        Whether the ML framework differentiates through the simulation itself
        (``diff_method="backprop"``, or a framework tracing a direct execution): it
        must run on a backend that computes with the framework's tensors.
    differenced : bool
        Whether derivatives are taken by differencing these results (finite
        differences, SPSA): single-precision rounding divided by a small step would
        swamp them, so they need double precision.
    """

    num_wires: int
    depth: int = 0
    num_1q_gates: int = 0
    num_2q_gates: int = 0
    num_multi_gates: int = 0
    max_gate_wires: int = 0
    max_dense_wires: int = 0
    dense_gate_work: float = 0.0
    num_parameters: int = 0
    num_trainable: int = 0
    operations: frozenset[str] = field(default_factory=frozenset)
    trainable_operations: frozenset[str] = field(default_factory=frozenset)
    observables: frozenset[str] = field(default_factory=frozenset)
    measurements: frozenset[str] = field(default_factory=frozenset)
    channels: frozenset[str] = field(default_factory=frozenset)
    num_measurements: int = 1
    shots: int | None = None
    batch_size: int = 1
    num_tapes: int = 1
    derivative: str | None = None
    backprop: bool = False
    differenced: bool = False

    def __post_init__(self):
        if self.derivative not in DERIVATIVE_KINDS:
            raise ValueError(
                f"derivative must be one of {DERIVATIVE_KINDS}, got {self.derivative!r}"
            )

    @property
    def num_gates(self) -> int:
        """Total number of gates per circuit."""
        return self.num_1q_gates + self.num_2q_gates + self.num_multi_gates


_KINDS = (
    (ExpectationMP, "expval"),
    (VarianceMP, "var"),
    (ProbabilityMP, "probs"),
    (SampleMP, "sample"),
    (CountsMP, "counts"),
    (DensityMatrixMP, "density_matrix"),
    (StateMP, "state"),
)


def measurement_kind(mp: MeasurementProcess) -> str:
    """The capability name of a measurement process.

    ``"expval"``, ``"var"``, ``"probs"``, ``"sample"``, ``"counts"``, ``"state"``,
    ``"density_matrix"``; any other measurement is named after its class, e.g.
    ``"VnEntropyMP"``.
    """
    for cls, kind in _KINDS:
        if isinstance(mp, cls):
            return kind
    return type(mp).__name__


def observable_names(obs: qml.operation.Operator | None) -> set[str]:
    """Names of an observable and, for arithmetic observables, of all its parts."""
    if obs is None:
        return set()
    names = {obs.name}
    if isinstance(obs, qml.ops.CompositeOp):
        for operand in obs.operands:
            names |= observable_names(operand)
    elif isinstance(obs, qml.ops.SymbolicOp):
        names |= observable_names(obs.base)
    return names


def dense_width(op: qml.operation.Operator) -> int:
    """Wires of the dense matrix a simulator applies for ``op`` (0: not a dense matrix).

    A ``QubitUnitary`` is applied whole; a controlled one as its target's matrix on
    the amplitudes its controls select.
    """
    if op.name == "QubitUnitary":
        return len(op.wires)
    base = getattr(op, "base", None)
    if base is not None and base.name == "QubitUnitary":
        return len(base.wires)
    return 0


def _dense_gate_work(widths: Sequence[int]) -> float:
    return float(sum(max(2.0**k / 4 - 1, 0.0) for k in widths))


def _depth(tape: QuantumScript) -> int:
    level: dict[Hashable, int] = {}
    depth = 0
    for op in tape.operations:
        layer = 1 + max((level.get(w, 0) for w in op.wires), default=0)
        for w in op.wires:
            level[w] = layer
        depth = max(depth, layer)
    return depth


def describe(
    tapes: Sequence[QuantumScript],
    derivative: str | None = None,
    num_wires: int | None = None,
    *,
    backprop: bool = False,
    differenced: bool = False,
) -> WorkloadFeatures:
    """Describe a group of tapes that share one structure.

    Parameters
    ----------
    tapes : Sequence[QuantumScript]
        Non-empty group; the first tape stands for the structure of all of them.
    derivative : {None, "jacobian", "vjp"}
        Derivative request for the group.
    num_wires : int, optional
        Width the circuits run at (defaults to the number of wires the tape uses).
    backprop, differenced : bool
        See :class:`WorkloadFeatures`.

    Returns
    -------
    WorkloadFeatures
    """
    tape = tapes[0]
    sizes = [len(op.wires) for op in tape.operations]
    dense = [dense_width(op) for op in tape.operations]
    observables: set[str] = set()
    for mp in tape.measurements:
        observables |= observable_names(mp.obs)
    shots = tape.shots.total_shots if tape.shots else None
    return WorkloadFeatures(
        num_wires=num_wires if num_wires is not None else len(tape.wires),
        depth=_depth(tape),
        num_1q_gates=sum(1 for s in sizes if s == 1),
        num_2q_gates=sum(1 for s in sizes if s == 2),
        num_multi_gates=sum(1 for s in sizes if s > 2),
        max_gate_wires=max(sizes, default=0),
        max_dense_wires=max(dense, default=0),
        dense_gate_work=_dense_gate_work(dense),
        num_parameters=tape.num_params,
        num_trainable=len(tape.trainable_params),
        operations=frozenset(op.name for op in tape.operations if not isinstance(op, Channel)),
        channels=frozenset(op.name for op in tape.operations if isinstance(op, Channel)),
        trainable_operations=frozenset(
            tape.get_operation(i)[0].name for i in range(len(tape.trainable_params))
        ),
        observables=frozenset(observables),
        measurements=frozenset(measurement_kind(mp) for mp in tape.measurements),
        num_measurements=len(tape.measurements),
        shots=shots,
        batch_size=sum(t.batch_size or 1 for t in tapes),
        num_tapes=len(tapes),
        derivative=derivative,
        backprop=backprop,
        differenced=differenced,
    )
