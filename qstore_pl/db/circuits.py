"""What the database reads from an executed circuit: its identity, its parameters,
its final state and, for shot runs, its measured distribution."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.devices.qubit import get_final_state
from pennylane.measurements import CountsMP, ProbabilityMP, SampleMP
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.db import call_facts
from qstore_pl.db.call_facts import CallFacts, ParameterRun
from qstore_pl.support.limits import current_limits


def state_wires(tape: QuantumScript) -> Wires:
    """The wire order of recorded states: 0..max for integer wires (as ``qml.state()``
    on a device with ``wires=n``), the tape's own order otherwise."""
    labels = list(tape.wires)
    if labels and all(isinstance(w, int) and w >= 0 for w in labels):
        return Wires(range(max(labels) + 1))
    return tape.wires


def structure_text(tape: QuantumScript) -> str:
    """The circuit without its parameter values: gate names, wires, measurements."""
    ops = ";".join(f"{op.name}{list(op.wires)}" for op in tape.operations)
    measurements = ";".join(type(m).__name__ + str(list(m.wires)) for m in tape.measurements)
    observables = ";".join(
        repr(m.obs.name if m.obs is not None else None) for m in tape.measurements
    )
    return f"{ops}|{measurements}|{observables}"


def structure_hash(tape: QuantumScript) -> str:
    """A short digest of :func:`structure_text`: the same for every parameter value."""
    return hashlib.sha256(structure_text(tape).encode()).hexdigest()[:16]


def _numeric_data(tape: QuantumScript) -> list:
    data = [d for op in tape.operations for d in op.data]
    data += [d for m in tape.measurements if m.obs is not None for d in m.obs.data]
    return data


def exact_digest(tape: QuantumScript, *extra: str) -> bytes:
    """A digest of the structure, the exact parameter values (bit for bit), the shots
    and ``extra`` strings: equal digests mean the same execution."""
    digest = hashlib.sha256(structure_text(tape).encode())
    digest.update(repr(tape.shots).encode())
    for value in _numeric_data(tape):
        array = np.asarray(qml.math.unwrap(value))
        digest.update(f"{array.dtype.kind}{array.shape}".encode())
        kind = np.complex128 if np.iscomplexobj(array) else np.float64
        digest.update(np.ascontiguousarray(array, dtype=kind).tobytes())
    for text in extra:
        digest.update(b"\0" + text.encode())
    return digest.digest()


def parameter_runs(tape: QuantumScript) -> tuple[ParameterRun, ...]:
    """The gate parameters of the tape in order, as runs of consecutive parameters
    shared by every broadcast element (the weights) or one per element (matrices and
    state vectors are left out)."""
    batch = tape.batch_size or 1
    runs: list[tuple[bool, list]] = []  # (shared, [floats] or [(batch, k) arrays])
    for op in tape.operations:
        ndims = op.ndim_params if op.batch_size else (None,) * len(op.data)
        for value, ndim in zip(op.data, ndims):
            if not isinstance(value, float | np.ndarray):
                value = qml.math.unwrap(value)
            array = np.asarray(value)
            if np.iscomplexobj(array) or array.size == 0:  # matrices and state vectors
                continue
            shared = not (bool(op.batch_size) and ndim is not None and array.ndim > ndim)
            if not runs or runs[-1][0] != shared:
                runs.append((shared, []))
            if shared:
                runs[-1][1].append(array.astype(float).ravel())
            else:
                runs[-1][1].append(array.astype(float).reshape(batch, -1))
    return tuple(
        ParameterRun(shared, np.concatenate(parts, axis=0 if shared else 1))
        for shared, parts in runs
    )


def parameter_texts(tape: QuantumScript) -> list[str]:
    """The gate parameters of each circuit in the tape as JSON lists, one per
    broadcast element (see :func:`qstore_pl.db.call_facts.parameter_texts`)."""
    return call_facts.parameter_texts(parameter_runs(tape), tape.batch_size or 1)


def facts_of(tape: QuantumScript) -> CallFacts:
    """What the delivery needs from the tape beside the backend's amplitudes."""
    return CallFacts(structure_hash(tape), tape.batch_size or 1, parameter_runs(tape))


def final_states(tape: QuantumScript) -> np.ndarray:
    """The final pure state of each circuit in the tape, simulated with PennyLane's
    ``default.qubit`` functions: shape ``(batch, 2**n)`` over :func:`state_wires`.

    Raises
    ------
    InputLimitError
        When the state would have more than ``max_state_wires`` wires (wire labels
        up to 29 make a 30-wire state, 16 GiB), before anything is allocated.
    """
    wires = state_wires(tape)
    current_limits().check("max_state_wires", len(wires), "wires of the recorded state")
    idle = [qml.Identity(w) for w in wires if w not in tape.wires]
    circuit = QuantumScript(tape.operations + idle, [], shots=None)
    # get_final_state orders the state's axes by wire label, not by first use: label
    # each wire by its position in ``wires``
    (circuit,), _ = qml.map_wires(circuit, {w: i for i, w in enumerate(wires)})
    state, batched = get_final_state(circuit)
    state = np.asarray(qml.math.unwrap(state))
    if not batched:
        state = state[np.newaxis]
    return state.reshape(state.shape[0], 2 ** len(wires))


def measured_distributions(tape: QuantumScript, result: Any) -> np.ndarray | None:
    """The measured distribution over all :func:`state_wires` when a finite-shot tape
    returns ``qml.probs()``, ``qml.counts()`` or ``qml.sample()`` on every wire, as an
    array ``(batch, 2**n)``; ``None`` otherwise."""
    if not tape.shots or tape.shots.has_partitioned_shots:
        return None
    wires = state_wires(tape)
    results = [result] if len(tape.measurements) == 1 else list(result)
    for mp, value in zip(tape.measurements, results):
        if isinstance(mp, ProbabilityMP | CountsMP | SampleMP) and mp.obs is None:
            measured = mp.wires if len(mp.wires) else tape.wires
            if set(measured) == set(wires):
                return _distribution(mp, value, measured, wires, tape.batch_size)
    return None


def _distribution(mp, value, measured: Wires, wires: Wires, batch_size) -> np.ndarray:
    n = len(wires)
    rows = list(value) if batch_size else [value]
    out = np.zeros((len(rows), 2**n))
    for i, row in enumerate(rows):
        if isinstance(mp, ProbabilityMP):
            probs = np.asarray(row, dtype=float).reshape((2,) * n)
        else:
            counts = np.zeros((2,) * n)
            if isinstance(mp, CountsMP):
                for bits, count in row.items():
                    counts[tuple(int(b) for b in bits)] += count
            else:
                samples = np.asarray(row, dtype=int).reshape(-1, n)
                np.add.at(counts, tuple(samples.T), 1)
            probs = counts / counts.sum()
        order = [list(measured).index(w) for w in wires]
        out[i] = np.transpose(probs, order).reshape(-1)
    return out
