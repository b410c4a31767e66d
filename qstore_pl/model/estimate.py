"""Count and price the circuits of a training run on the device that will run it.

Nothing is executed. The circuits are the ones the run will submit, built the same
way: the model's circuit for a batch, and the gradient transform (the parameter-shift
rule or SPSA) applied to it as PennyLane applies it. The router says where each group
would go (:meth:`~qstore_pl.router.device.RouterDevice.explain`) and what it costs
there (:meth:`~qstore_pl.router.device.RouterDevice.estimate_cost`, priced per job
as the ledger charges it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp
from pennylane.tape import QuantumScript

from qstore_pl.layers.circuit import LayerCircuit
from qstore_pl.model.quote import Quote, QuoteLine, sum_or_none
from qstore_pl.router.purpose import purpose

#: Samples per job when evaluating (validation, ``evaluate``, ``predict``).
EVAL_CHUNK = 256
#: SPSA's perturbation size: with shots a tiny step would measure only noise.
SPSA_H = 0.1


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Sizes of the batches of ``n`` samples (the last one may be smaller)."""
    full, rest = divmod(n, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def gradient_kwargs(method: str, rng: np.random.Generator | None = None) -> dict | None:
    """Options the QNode's gradient method gets (only SPSA takes any)."""
    return spsa_kwargs(rng) if method == "spsa" else None


def spsa_kwargs(rng: np.random.Generator | None = None) -> dict[str, Any]:
    """SPSA's options: one direction per step, drawn from ``rng``."""
    return {"h": SPSA_H, "num_directions": 1, "sampler_rng": rng or np.random.default_rng(0)}


@dataclass(frozen=True)
class _Priced:
    backend: str
    circuits: int
    usd: float
    seconds: float | None
    jobs: int = 1  # groups of one structure: the router submits each as one job


class RunEstimator:
    """Counts and prices phases of a run of ``circuit`` on ``device``.

    Parameters
    ----------
    circuit : LayerCircuit
        The model's circuit.
    device : qml.devices.Device
        The device the model trains on.
    shots : int or None
        Shots per circuit.
    joint_gradient : bool
        Whether a step submits its forward and gradient circuits together, as one
        job (JAX under ``jax.jit`` does) rather than one after the other.
    """

    def __init__(self, circuit: LayerCircuit, device, shots: int | None, joint_gradient=False):
        self.circuit = circuit
        self.device = device
        self.shots = shots
        self.joint_gradient = joint_gradient
        self.routed = getattr(device, "name", "") == "qstore.router"
        shape = circuit.weight_shapes()["weights"]
        self._weights = pnp.array(np.full(shape, 0.1), requires_grad=True)

    # -------------------------------------------------------------- tapes
    def _probe(self, method: str) -> qml.QNode:
        options = {} if self.shots is None else {"shots": self.shots}
        return qml.QNode(
            self.circuit.qfunc(),
            self.device,
            interface="autograd",
            diff_method=method,
            gradient_kwargs=gradient_kwargs(method),
            **options,
        )

    def tape(self, x: np.ndarray) -> QuantumScript:
        """The batch's circuit decomposed to gates the parameter-shift rule
        differentiates (so each trainable number is one gate parameter); trainable:
        the weights (the data never is, as in the framework layers)."""
        inputs = pnp.array(x, requires_grad=False)
        probe = self._probe("parameter-shift")
        tapes, _ = qml.workflow.construct_batch(probe, level="gradient")(inputs, self._weights)
        [tape] = tapes
        trainable: list[int] = []
        index = 0
        for op in tape.operations:
            if op.batch_size is None:  # broadcast over the batch: the data
                trainable.extend(range(index, index + op.num_params))
            index += op.num_params
        tape.trainable_params = trainable
        return tape

    def gradient_tapes(self, tape: QuantumScript, method: str) -> list[QuantumScript]:
        """The circuits the gradient method adds for one batch."""
        if method == "parameter-shift":
            tapes, _ = qml.gradients.param_shift(tape)
        elif method == "spsa":
            tapes, _ = qml.gradients.spsa_grad(tape, **spsa_kwargs())
        else:
            return []
        return list(tapes)

    # ------------------------------------------------------------- prices
    def price(self, tapes: Sequence[QuantumScript], purpose_name: str) -> _Priced:
        """Where ``tapes`` (one job) would run, and its price and time."""
        circuits = sum(t.batch_size or 1 for t in tapes)
        if not self.routed:
            return _Priced(self.device.name, circuits, 0.0, None)
        with purpose(purpose_name):
            decisions = self.device.explain(list(tapes), derivative=None).decisions
        backend = decisions[0].backend
        seconds = [_seconds(d) for d in decisions]
        return _Priced(
            backend,
            circuits,
            self._usd(tapes, backend),
            sum_or_none(seconds),
            jobs=len(decisions),
        )

    def backward(self, x: np.ndarray) -> _Priced:
        """Where the adjoint backward sweep of a batch would run, and its time."""
        if not self.routed:
            return _Priced(self.device.name, len(x), 0.0, None)
        probe = self._probe("adjoint")
        decision = self.device.explain(
            probe, pnp.array(x, requires_grad=False), self._weights, derivative="auto"
        ).decisions[0]
        return _Priced(decision.backend, len(x), 0.0, _seconds(decision))

    def _usd(self, tapes: Sequence[QuantumScript], backend: str) -> float:
        if not any(spec.name == backend and spec.metered for spec in self.device.backends):
            return 0.0
        if not tapes[0].shots:
            return 0.0
        # one line per group of same-structure tapes ("name [i]" when several): the
        # router submits each group as one job
        lines = self.device.estimate_cost(list(tapes)).lines
        return sum(line.cost() for line in lines if line.backend.split(" [")[0] == backend)

    # --------------------------------------------------------------- quote
    def quote(
        self,
        x: np.ndarray,
        batch_size: int,
        x_validation: np.ndarray | None,
        epochs: int,
        method: str,
        reason: str,
        alternatives: dict[str, float] | None = None,
    ) -> Quote:
        """Quote ``epochs`` epochs over ``x`` with ``method``, validating on
        ``x_validation`` after every epoch."""
        lines: dict[tuple[str, str], list] = {}
        sizes = batch_sizes(len(x), batch_size)

        def add(phase: str, priced: _Priced) -> None:
            shots = priced.circuits * (self.shots or 0) if phase != "backward" else 0
            entry = lines.setdefault((phase, priced.backend), [0, 0, 0, 0.0, 0.0])
            entry[0] += priced.jobs
            entry[1] += priced.circuits
            entry[2] += shots
            entry[3] += priced.usd
            entry[4] = (
                None if priced.seconds is None or entry[4] is None else (entry[4] + priced.seconds)
            )

        per_size: dict[int, list[tuple[str, _Priced]]] = {}
        trainable = 0
        for size in sizes:
            if size not in per_size:
                batch = x[:size]
                tape = self.tape(batch)
                trainable = len(tape.trainable_params)
                if method == "adjoint":
                    phases = [
                        ("forward", self.price([tape], "training")),
                        ("backward", self.backward(batch)),
                    ]
                elif self.joint_gradient:
                    tapes = [tape, *self.gradient_tapes(tape, method)]
                    phases = [("forward+gradient", self.price(tapes, "training"))]
                else:
                    phases = [
                        ("forward", self.price([tape], "training")),
                        ("gradient", self.price(self.gradient_tapes(tape, method), "training")),
                    ]
                per_size[size] = phases
            for phase, priced in per_size[size]:
                add(phase, priced)
        if x_validation is not None:
            for start in range(0, len(x_validation), EVAL_CHUNK):
                chunk = x_validation[start : start + EVAL_CHUNK]
                add("validation", self.price([self.tape(chunk)], "validation"))
        return Quote(
            epochs=epochs,
            steps_per_epoch=len(sizes),
            gradient=method,
            gradient_reason=reason,
            trainable=trainable,
            shots=self.shots,
            lines=tuple(
                QuoteLine(phase, backend, jobs, circuits, shots, usd, seconds)
                for (phase, backend), (jobs, circuits, shots, usd, seconds) in lines.items()
            ),
            alternatives=dict(alternatives or {}),
        )

    def is_priced(self, x: np.ndarray) -> tuple[bool, str]:
        """Whether a batch's forward pass would go to a backend that charges, and which."""
        priced = self.price([self.tape(x)], "training")
        if not self.routed:
            return False, priced.backend
        spec = next(s for s in self.device.backends if s.name == priced.backend)
        return (spec.metered and not spec.pricing.is_free), priced.backend


def _seconds(decision) -> float | None:
    for candidate in decision.candidates:
        if candidate.backend == decision.backend:
            return candidate.seconds
    return None
