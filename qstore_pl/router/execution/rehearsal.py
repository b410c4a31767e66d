"""Hardware rehearsals: run the exact circuits a QPU job would run, with its noise, here.

A backend with ``noise_model`` in its config (``{"type": "default.mixed",
"noise_model": "aria-1", "use_for": "rehearsal"}``) compiles every circuit as the IonQ
backend with ``gateset="native"`` submits it (measurements rotated to the
computational basis, then GPI/GPI2/MS with single-qubit fusion and virtual Z: see
:func:`qstore_pl.devices.ionq.device.to_native`) and puts a depolarising channel
after every native gate, with the device's public gate fidelities
(:mod:`qstore_pl.devices.ionq.noise_models`). The density-matrix backend then gives the
noisy values exactly (or sampled with shots), at no cost, before any money is spent.
"""

from __future__ import annotations

from dataclasses import replace

import pennylane as qml
from pennylane.measurements import DensityMatrixMP, StateMP
from pennylane.operation import Operator
from pennylane.tape import QuantumScript
from pennylane.transforms import broadcast_expand
from pennylane.transforms.core import transform

from qstore_pl.circuits.ionq_native import gpi2_matrix, gpi_matrix, ms_matrix
from qstore_pl.devices.ionq.noise_models import HARDWARE_NOISE, GateErrors, gate_errors
from qstore_pl.exceptions import ConfigError, UnsupportedCircuitError
from qstore_pl.router.config import BackendConfig
from qstore_pl.router.routing.noise import is_channel
from qstore_pl.router.routing.spec import BackendSpec


def noisy_native_operations(operations, errors: GateErrors) -> list[Operator]:
    """Native gates as matrices, each followed by its depolarising channels.

    ``pennylane_ionq.ops.MS`` has a wrong matrix for the fully entangling angle (see
    :func:`~qstore_pl.circuits.ionq_native.ms_matrix`), so every gate is applied as the matrix
    the IonQ compiler and emulator agree on.
    """
    p1, p2 = errors.depolarizing_1q(), errors.depolarizing_2q()
    ops: list[Operator] = []
    for op in operations:
        phases = [float(p) for p in op.parameters]
        if op.name == "MS":
            ops.append(qml.QubitUnitary(ms_matrix(*phases), wires=op.wires))
            ops += [qml.DepolarizingChannel(p2, wires=w) for w in op.wires] if p2 else []
            continue
        matrix = gpi_matrix(phases[0]) if op.name == "GPI" else gpi2_matrix(phases[0])
        ops.append(qml.QubitUnitary(matrix, wires=op.wires))
        if p1:
            ops.append(qml.DepolarizingChannel(p1, wires=op.wires))
    return ops


@transform
def rehearse(tape: QuantumScript, noise_model: str):
    """The circuit a QPU job would run, compiled to native gates, with the named
    model's noise after every gate.

    Raises
    ------
    UnsupportedCircuitError
        For a circuit that already has channels (the model adds the hardware's noise),
        or that measures the state (hardware measures in the computational basis).
    """
    if any(isinstance(mp, (StateMP, DensityMatrixMP)) for mp in tape.measurements):
        raise UnsupportedCircuitError(
            "a hardware rehearsal measures in the computational basis, as the QPU does: "
            "qml.state() and qml.density_matrix() have no counterpart there; measure "
            "expval, var, probs, sample or counts, or run it outside the rehearsal purpose"
        )
    channels = sorted({op.name for op in tape.operations if is_channel(op)})
    if channels:
        raise UnsupportedCircuitError(
            f"a hardware rehearsal adds the device's own noise, and this circuit already has "
            f"channels {channels}: remove them, or run it on a backend without noise_model"
        )
    if tape.batch_size:
        tapes, stack = broadcast_expand(tape)
        rehearsed = [_rehearsed(t, noise_model) for t in tapes]
        return rehearsed, stack
    return [_rehearsed(tape, noise_model)], lambda results: results[0]


def _rehearsed(tape: QuantumScript, noise_model: str) -> QuantumScript:
    # pennylane-ionq is imported here: only a rehearsal needs it
    from qstore_pl.devices.ionq.device import to_native

    native = to_native(tape)
    operations = noisy_native_operations(native.operations, gate_errors(noise_model))
    return native.copy(operations=operations)


#: Measurements a rehearsal gives (computational-basis ones).
_ANALYTIC = frozenset({"expval", "var", "probs"})


def for_rehearsal(spec: BackendSpec, entry: BackendConfig, density_matrix: bool) -> BackendSpec:
    """``spec`` as a rehearsal backend with ``entry.noise_model``.

    Raises
    ------
    ConfigError
        If the backend does not simulate noise, or the model is unknown.
    """
    where = f"config['backends'] entry {entry.name!r}"
    if not density_matrix:
        raise ConfigError(
            f"{where}: noise_model needs a backend that simulates noise; {entry.type!r} "
            "simulates pure states. Use type 'default.mixed' (or 'qstore.aer' with the qiskit "
            "extra)"
        )
    if entry.noise_model not in HARDWARE_NOISE:
        raise ConfigError(
            f"{where}: unknown noise_model {entry.noise_model!r}; known: "
            f"{', '.join(HARDWARE_NOISE)}"
        )
    caps = replace(
        spec.capabilities,
        measurements=_ANALYTIC,
        channels=frozenset(),  # the model brings the noise
        backprop=False,  # compiled from numbers: the ML framework cannot trace it
    )
    return replace(spec, capabilities=caps, noise_model=entry.noise_model)
