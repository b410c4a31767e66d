"""The ``qstore.qsim`` device: PennyLane circuits on Google's qsim, driven directly."""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.capabilities import observable_stopping_condition_factory
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    device_resolve_dynamic_wires,
    validate_device_wires,
    validate_measurements,
    validate_observables,
)
from pennylane.devices.qubit.simulate import measure_final_state
from pennylane.operation import Operator, StatePrepBase
from pennylane.tape import QuantumScript, QuantumScriptBatch, QuantumScriptOrBatch
from pennylane.transforms import defer_measurements
from pennylane.transforms.core import CompilePipeline, transform
from pennylane.typing import PostprocessingFn, Result, ResultBatch
from pennylane.wires import Wires, WiresLike

from qstore_pl.devices.execution_config import deferred_mcm_only, reject_device_options
from qstore_pl.devices.qsim import translate
from qstore_pl.devices.qsim.measurements import MeasurementPlan, normalised
from qstore_pl.devices.qsim.simulator import QsimSimulator
from qstore_pl.devices.wire_count import check_wire_count
from qstore_pl.exceptions import UnsupportedCircuitError
from qstore_pl.support.bounded_cache import BoundedCache

#: Default gate-fusion size. Measured at 16-20 qubits on 2 cores: on the DESIGN.md
#: benchmark circuit (1-qubit rotations, CNOT ring) sizes 1, 2, 4 and 5 tie and 3 is
#: ~10% slower; on random circuits with 2- and 3-qubit gates 2 is fastest, and 4, 5,
#: 6 are 1.5x, 2.2x, 3.4x slower.
DEFAULT_MAX_FUSED_GATE_SIZE = 2

#: Structures whose gate plans are kept (least recently used ones are dropped).
PLAN_CACHE_SIZE = 256


def _max_qubits() -> int:
    """Widest complex64 state that fits in half of this machine's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 2**30
    return int(math.log2(memory / 2 / 8))  # 8 bytes per complex64 amplitude


@transform
def validate_width(
    tape: QuantumScript, wires: Wires | None, name: str
) -> tuple[QuantumScriptBatch, PostprocessingFn]:
    """Raise a :class:`DeviceError` for a circuit wider than the device."""
    if wires is not None and tape.num_wires > len(wires):
        raise UnsupportedCircuitError(
            f"the circuit uses {tape.num_wires} wires {tape.wires.tolist()} but {name} "
            f"was created with {len(wires)}; create the device with wires={tape.num_wires} "
            "or more"
        )
    return (tape,), lambda results: results[0]


@simulator_tracking
@single_tape_support
class QsimDevice(Device):
    """A PennyLane device that simulates circuits with qsim (``qsimcirq``) directly.

    Circuits are translated straight into qsim's C++ circuit representation, without
    Cirq: native qsim gates where one exists, qsim matrix gates (up to six wires)
    otherwise. Tapes of one structure (same gates, wires and measurements; different
    parameters) share one translation, so a batch of them, and the elements of a
    parameter-broadcast tape, run as a parameter sweep that costs one pass over the
    translated gates per circuit.

    **Precision.** qsim computes in single precision (complex64 amplitudes, float32
    gate matrices). Against ``default.qubit`` on random circuits of 2-12 qubits
    (rotations, CNOT/CZ, IsingZZ, controlled gates, random two-qubit unitaries), the
    largest error of any expectation value or probability was 1.5e-6 with up to 200
    gates and 3e-6 with up to 2000 (median 1e-7 to 1e-6); errors are largest on few
    qubits, where every gate acts on the same amplitudes, and scale with the norm of
    the observable. The state's norm drifts by ~1.5e-8 per gate; expectation values
    are divided by it and states are renormalised in double precision before
    PennyLane measures them. PennyLane's device test suite passes at its default
    tolerance (1e-6). Use ``lightning.qubit`` or ``default.qubit`` where more
    precision is needed.

    **Measurements.** ``<Z_i>`` on any number of wires (and linear combinations of
    them) come from two passes over the final probabilities; other expectation
    values and variances of Pauli words and Pauli sums (Hamiltonians) from qsim's
    C++ expectation routine; probabilities, states, density matrices, Hermitian and
    projector observables, and all sampled measurements (``sample``, ``counts``,
    shot vectors) from PennyLane's measurement functions on the final state (see
    :mod:`~qstore_pl.devices.qsim.measurements`). Mid-circuit measurements are deferred
    (``defer_measurements``: one extra wire per measurement).

    **Derivatives.** The device computes none itself: QNodes differentiate it with
    the parameter-shift rule (``diff_method="best"`` or ``"parameter-shift"``), whose
    shifted circuits share a structure and therefore run as one sweep.

    Parameters
    ----------
    wires : int or Iterable, optional
        Number of wires or their labels. ``None`` sizes each circuit to its wires.
    shots : int or list[int], optional
        Default shots (deprecated in PennyLane: prefer ``qml.set_shots`` on a QNode).
    seed : int or np.random.Generator, optional
        Seed for sampling finite-shot measurements.
    max_fused_gate_size : int
        qsim fuses neighbouring gates into matrices on up to this many qubits (1-6).
    cpu_threads : int, optional
        CPU threads qsim uses per circuit; ``None`` decides per circuit: one below
        ~15 qubits, else the cores this process may use that no other process is
        busy on (:mod:`qstore_pl.support.threads`; ``QSTORE_THREADS`` fixes the count).
        Beside busy processes extra threads cost more than they give (20 qubits:
        38 ms idle on 2 threads, 215-950 ms on 2 threads beside other jobs, ~50 ms
        on 1).

    Raises
    ------
    ValueError
        If ``max_fused_gate_size`` or ``cpu_threads`` is out of range.
    """

    name = "qstore.qsim"
    config_filepath = str(Path(__file__).with_name("qsim.toml"))

    def __init__(
        self,
        wires: WiresLike | int | None = None,
        shots: int | Sequence[int] | None = None,
        seed: int | np.random.Generator | None = None,
        max_fused_gate_size: int = DEFAULT_MAX_FUSED_GATE_SIZE,
        cpu_threads: int | None = None,
    ):
        check_wire_count(wires, self.name)
        super().__init__(wires=wires, shots=shots)
        if not 1 <= max_fused_gate_size <= translate.MAX_MATRIX_WIRES:
            raise ValueError(f"max_fused_gate_size must be 1-6, got {max_fused_gate_size}")
        if cpu_threads is not None and cpu_threads < 1:
            raise ValueError(f"cpu_threads must be at least 1, got {cpu_threads}")
        self._simulator = QsimSimulator(max_fused_gate_size, cpu_threads)
        self._rng = np.random.default_rng(seed)
        self._plans: BoundedCache[Hashable, translate.GatePlan] = BoundedCache(PLAN_CACHE_SIZE)
        self._max_qubits = _max_qubits()

    @property
    def max_fused_gate_size(self) -> int:
        """Largest gate (in qubits) qsim's gate fusion creates."""
        return self._simulator.max_fused_gate_size

    @property
    def cpu_threads(self) -> int | None:
        """CPU threads qsim uses per circuit; ``None``: decided per circuit."""
        return self._simulator.num_threads

    # preprocessing --------------------------------------------------------------------
    def setup_execution_config(
        self, config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> ExecutionConfig:
        """Resolve the mid-circuit-measurement method (only ``"deferred"`` runs here).

        Raises
        ------
        DeviceError
            For an unknown device option or another mid-circuit-measurement method.
        """
        config = config or ExecutionConfig()
        reject_device_options(config, self.name)
        return replace(config, mcm_config=deferred_mcm_only(config, self.name))

    def preprocess_transforms(
        self, execution_config: ExecutionConfig | None = None
    ) -> CompilePipeline:
        """Transforms that make circuits runnable here (see the class docstring)."""
        analytic = self.capabilities.filter(finite_shots=False)
        sampled = self.capabilities.filter(finite_shots=True)
        program = CompilePipeline()
        program.add_transform(validate_width, self.wires, name=self.name)
        # postselection would leave unnormalised states: rejected with a clear error
        program.add_transform(defer_measurements, allow_postselect=False)
        program.add_transform(
            decompose,
            stopping_condition=self._runs_natively,
            skip_initial_state_prep=True,
            device_wires=self.wires,
            target_gates=self.capabilities.gate_set(),
            name=self.name,
        )
        program.add_transform(device_resolve_dynamic_wires, wires=self.wires, allow_resets=False)
        program.add_transform(validate_device_wires, self.wires, name=self.name)
        # any state measurement analytically (PennyLane measures it on the state), any
        # sample measurement with shots
        program.add_transform(validate_measurements, name=self.name)
        program.add_transform(
            validate_observables,
            stopping_condition=observable_stopping_condition_factory(analytic),
            stopping_condition_shots=observable_stopping_condition_factory(sampled),
            name=self.name,
        )
        return program

    def _runs_natively(self, op: Operator) -> bool:
        if isinstance(op, StatePrepBase):  # only as the first operation (kept by decompose)
            return False
        return self.capabilities.supports_operation(op) and translate.is_translatable(op)

    # execution ------------------------------------------------------------------------
    def execute(
        self,
        circuits: QuantumScriptOrBatch,
        execution_config: ExecutionConfig | None = None,
    ) -> Result | ResultBatch:
        """Run preprocessed circuits on qsim.

        Raises
        ------
        InvalidParameterError
            If a gate parameter is NaN or infinite (a ``ValueError``).
        DeviceError
            If a circuit is wider than the device or than memory allows.
        """
        return tuple(self._run(tape) for tape in circuits)

    def _run(self, tape: QuantumScript) -> Result:
        self._check_width(tape)
        sweep = self._plan(tape).bind(tape)
        points = range(sweep.num_points)
        batched = sweep.batch_size is not None
        # gates were placed by position in tape.wires; measure on those positions too
        measured = _on_standard_wires(tape)
        if tape.shots:
            states = [normalised(self._state(sweep, p), tape.num_wires) for p in points]
            state = np.stack(states) if batched else states[0]
            return measure_final_state(measured, state, batched, rng=self._rng)
        plan = MeasurementPlan.of(measured, tape.num_wires)
        results = [
            plan.evaluate(self._simulator, sweep.circuit(p), sweep.initial_state(p)) for p in points
        ]
        return plan.results(results, batched)

    def _state(self, sweep: translate.BoundPlan, point: int) -> np.ndarray:
        return self._simulator.state(sweep.circuit(point), sweep.initial_state(point))

    def _check_width(self, tape: QuantumScript) -> None:
        if self.wires is not None and tape.num_wires > len(self.wires):
            raise UnsupportedCircuitError(
                f"the circuit uses {tape.num_wires} wires but {self.name} has {len(self.wires)}"
            )
        if tape.num_wires > self._max_qubits:
            raise UnsupportedCircuitError(
                f"a {tape.num_wires}-qubit state does not fit in memory on this machine "
                f"({self.name} takes at most {self._max_qubits} qubits here)"
            )

    def _plan(self, tape: QuantumScript) -> translate.GatePlan:
        """The cached gate plan of the tape's structure, built on first use."""
        return self._plans.get_or_build(
            translate.structure_key(tape), lambda: translate.build_plan(tape)
        )


def _on_standard_wires(tape: QuantumScript) -> QuantumScript:
    """The tape's measurements on wire ``i`` for ``tape.wires[i]`` (no operations).

    Cheaper than ``tape.map_to_standard_wires()``: the gates need no mapping, as
    their plan already maps the wires.
    """
    if all(w == i for i, w in enumerate(tape.wires)):
        return QuantumScript([], tape.measurements, shots=tape.shots)
    index = {w: i for i, w in enumerate(tape.wires)}
    return QuantumScript([], [mp.map_wires(index) for mp in tape.measurements], shots=tape.shots)
