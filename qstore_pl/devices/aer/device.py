"""The ``qstore.aer`` device: noisy PennyLane circuits on Qiskit Aer, driven directly.

pennylane-qiskit 0.45's ``qiskit.aer`` device cannot run PennyLane's channels (its
converter has no ``DepolarizingChannel``; noise only as a Qiskit ``NoiseModel``) and
estimates even analytic expectation values from samples. This device writes gates and
channels into a Qiskit circuit itself (channels as Aer errors from their Kraus
matrices) and reads back what Aer computes: the final density matrix, measured with
default.mixed's own measurement functions, or sampled bit strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    validate_device_wires,
    validate_measurements,
)
from pennylane.devices.qubit_mixed import measure_final_state
from pennylane.exceptions import DeviceError
from pennylane.measurements import SampleMeasurement, StateMeasurement
from pennylane.tape import QuantumScript, QuantumScriptOrBatch
from pennylane.transforms import broadcast_expand, defer_measurements, split_non_commuting
from pennylane.transforms.core import CompilePipeline, transform
from pennylane.typing import Result, ResultBatch
from pennylane.wires import WiresLike

from qstore_pl.circuits.extras import import_extra
from qstore_pl.devices.aer.translate import FEATURE, CircuitWriter, bits_to_samples
from qstore_pl.devices.execution_config import deferred_mcm_only, reject_device_options
from qstore_pl.devices.wire_count import check_wire_count

#: Aer simulation methods this device runs.
METHODS = ("density_matrix", "statevector")


@simulator_tracking
@single_tape_support
class AerDevice(Device):
    """A PennyLane device that simulates noisy circuits with Qiskit Aer.

    **Methods.** ``method="density_matrix"`` (default) evolves the ``4**n``-entry density
    matrix: analytic results are exact (equal to default.mixed's to ~1e-12) and finite
    shots are sampled by Aer from the final state. ``method="statevector"`` runs Monte
    Carlo trajectories: every shot evolves a ``2**n`` state vector with one Kraus
    operator of every channel drawn at random and is measured once, so its samples
    come from the same distribution as the density matrix's, at a state vector's
    memory; it needs shots (an analytic result would be an estimate: use
    ``density_matrix``).

    **Derivatives.** None on the device: QNodes differentiate it with the
    parameter-shift rule (``diff_method="best"`` or ``"parameter-shift"``), gate angles
    and channel strengths alike; backpropagation needs default.mixed.

    Parameters
    ----------
    wires : int or Iterable, optional
        Number of wires or their labels.
    shots : int or list[int], optional
        Default shots (deprecated in PennyLane: prefer ``qml.set_shots`` on a QNode).
    seed : int or np.random.Generator, optional
        Seed of Aer's sampling (and trajectories).
    method : {"density_matrix", "statevector"}
        Aer's simulation method (see above).

    Raises
    ------
    ValueError
        For an unknown method.
    ImportError
        If ``qiskit-aer`` is not installed (the ``qiskit`` extra).
    """

    name = "qstore.aer"

    def __init__(
        self,
        wires: WiresLike | int | None = None,
        shots: int | Sequence[int] | None = None,
        seed: int | np.random.Generator | None = None,
        method: str = "density_matrix",
    ):
        check_wire_count(wires, self.name)
        if method not in METHODS:
            raise ValueError(f"{self.name}: unknown method {method!r}; use one of {METHODS}")
        super().__init__(wires=wires, shots=shots)
        aer = import_extra("qiskit_aer", "qiskit", FEATURE)
        self.method = method
        self._simulator = aer.AerSimulator(method=method)
        self._writer = CircuitWriter(self._simulator.configuration().basis_gates)
        self._rng = np.random.default_rng(seed)

    # preprocessing --------------------------------------------------------------------
    def setup_execution_config(
        self, config: ExecutionConfig | None = None, circuit: QuantumScript | None = None
    ) -> ExecutionConfig:
        """Resolve the mid-circuit-measurement method (only ``"deferred"`` runs here).

        Raises
        ------
        DeviceError
            For a device option, another mid-circuit-measurement method, or an analytic
            circuit with ``method="statevector"``.
        """
        config = config or ExecutionConfig()
        reject_device_options(config, self.name)
        if circuit is not None:
            self._check_shots(circuit)
        return replace(config, mcm_config=deferred_mcm_only(config, self.name))

    def preprocess_transforms(
        self, execution_config: ExecutionConfig | None = None
    ) -> CompilePipeline:
        """Transforms that make circuits runnable here: mid-circuit measurements
        deferred, gates without a Qiskit name decomposed, broadcasts expanded, and
        sampled observables grouped so that each group is measured in one basis."""
        program = CompilePipeline()
        program.add_transform(defer_measurements, allow_postselect=False)
        program.add_transform(broadcast_expand)  # a Qiskit circuit holds one circuit
        program.add_transform(
            decompose,
            stopping_condition=self._writer.runs,
            skip_initial_state_prep=False,
            name=self.name,
        )
        program.add_transform(validate_device_wires, self.wires, name=self.name)
        program.add_transform(
            validate_measurements,
            analytic_measurements=lambda mp: isinstance(mp, StateMeasurement),
            sample_measurements=lambda mp: isinstance(mp, SampleMeasurement),
            name=self.name,
        )
        program.add_transform(_split_sampled)
        return program

    # execution ------------------------------------------------------------------------
    def execute(
        self,
        circuits: QuantumScriptOrBatch,
        execution_config: ExecutionConfig | None = None,
    ) -> Result | ResultBatch:
        """Run preprocessed circuits on Aer, all of them in one Aer job per shot count.

        Raises
        ------
        DeviceError
            For an analytic circuit with ``method="statevector"``.
        """
        circuits = [tape.map_to_standard_wires() for tape in circuits]
        for tape in circuits:
            self._check_shots(tape)
        analytic = [i for i, tape in enumerate(circuits) if not tape.shots]
        results: list[Result] = [None] * len(circuits)
        if analytic:
            qcs = [self._qiskit_circuit(circuits[i], "density_matrix") for i in analytic]
            run = self._simulator.run(qcs, shots=1, seed_simulator=self._seed()).result()
            for k, i in enumerate(analytic):
                results[i] = self._measure_state(circuits[i], run.data(k)["density_matrix"])
        for i, tape in enumerate(circuits):
            if tape.shots:
                results[i] = self._sample(tape)
        return tuple(results)

    def _measure_state(self, tape: QuantumScript, density_matrix) -> Result:
        n = tape.num_wires
        state = np.asarray(density_matrix, dtype=complex).reshape((2,) * (2 * n))
        return measure_final_state(tape, state, is_state_batched=False)

    def _sample(self, tape: QuantumScript) -> Result:
        measured = tape.copy(operations=[*tape.operations, *tape.diagonalizing_gates])
        qc = self._qiskit_circuit(measured, "measure")
        shots = tape.shots.total_shots
        run = self._simulator.run(qc, shots=shots, memory=True, seed_simulator=self._seed())
        samples = bits_to_samples(run.result().get_memory(0), tape.num_wires)
        wire_order = tape.wires
        per_copy = []
        start = 0
        for copy in tape.shots:
            stop = start + copy
            values = tuple(
                mp.process_samples(samples, wire_order, shot_range=(start, stop))
                for mp in tape.measurements
            )
            per_copy.append(values[0] if len(values) == 1 else values)
            start = stop
        return per_copy[0] if len(per_copy) == 1 else tuple(per_copy)

    def _qiskit_circuit(self, tape: QuantumScript, save: str):
        return self._writer.circuit(tape.operations, tape.wires, save)

    def _seed(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    def _check_shots(self, circuit: QuantumScript) -> None:
        if self.method == "statevector" and not circuit.shots:
            raise DeviceError(
                f"{self.name} with method='statevector' samples noise by trajectories, one "
                "per shot, and has no exact result for an analytic circuit; give the QNode "
                "shots (qml.set_shots), or use method='density_matrix' for exact values"
            )


@transform
def _split_sampled(tape: QuantumScript):
    """A sampled circuit split so that each part measures commuting observables (one
    basis per Aer job); an analytic one kept (it is measured on the density matrix)."""
    if not tape.shots:
        return (tape,), lambda results: results[0]
    return split_non_commuting(tape)
