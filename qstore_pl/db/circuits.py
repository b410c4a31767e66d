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
    if _counted_from_zero(labels):
        return Wires(range(max(labels) + 1))
    return tape.wires


def _counted_from_zero(labels: list) -> bool:
    return bool(labels) and all(isinstance(w, int) and w >= 0 for w in labels)


def structure_text(tape: QuantumScript) -> str:
    """The circuit without its parameter values: gate names, wires, measurements."""
    return _structure(tape)[0]


def _structure(tape: QuantumScript) -> tuple[str, int]:
    """:func:`structure_text` and the number of :func:`state_wires`, from one look at
    each gate's wires (a controlled gate computes them on every look, and a fresh
    tape's ``wires`` looks at all of them again)."""
    labels: list = []
    pieces = []
    for op in tape.operations:
        wires = op.wires.labels
        labels += wires
        pieces.append(f"{op.name}{list(wires)}")
    measured = []
    for m in tape.measurements:
        wires = m.wires.labels
        labels += wires
        measured.append(type(m).__name__ + str(list(wires)))
    observables = ";".join(_observable_text(m.obs) for m in tape.measurements)
    width = max(labels) + 1 if _counted_from_zero(labels) else len(set(labels))
    return f"{';'.join(pieces)}|{';'.join(measured)}|{observables}", width


def _observable_text(obs) -> str:
    """An observable's name, and for a composite one (``X(0) @ Y(1)``, a Hamiltonian)
    its factors' names and wires: ``Prod`` alone would make ``X(0) @ Y(1)`` and
    ``Y(0) @ X(1)`` the same circuit (and a result cache answer one with the other)."""
    if obs is None:
        return repr(None)
    parts = getattr(obs, "operands", None)
    if parts is None and isinstance(getattr(obs, "base", None), qml.operation.Operator):
        parts = (obs.base,)
    if not parts:
        return repr(obs.name)
    inner = ",".join(f"{_observable_text(p)}{list(p.wires)}" for p in parts)
    return f"{obs.name!r}({inner})"


def structure_hash(tape: QuantumScript) -> str:
    """A short digest of :func:`structure_text`: the same for every parameter value."""
    return _digest(structure_text(tape))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def parameter_runs(tape: QuantumScript, batch: int | None = None) -> tuple[ParameterRun, ...]:
    """The gate parameters of the tape in order, as runs of consecutive parameters
    shared by every broadcast element (the weights) or one per element (matrices and
    state vectors are left out).

    ``batch``: the tape's broadcast size when the caller knows it (the rows of the
    states a backend kept); the tape's own ``batch_size`` costs a dimension check of
    every gate (about 1 ms at 136 gates, more than the rest of recording a call). A
    parameter is per element when it has one dimension more than its gate expects.
    """
    if batch is None:
        batch = tape.batch_size or 1
    runs: list[tuple[bool, list]] = []  # (shared, [floats] or [(batch, k) arrays])
    for op in tape.operations:
        data = op.data
        if not data:
            continue
        for value, ndim in zip(data, op.ndim_params):
            part: list[Any]
            if isinstance(value, float):  # most gates: one real angle (numpy's too)
                shared, part = True, [float(value)]
            else:
                array = np.asarray(
                    value if isinstance(value, np.ndarray) else qml.math.unwrap(value)
                )
                if array.dtype.kind == "c" or array.size == 0:  # matrices, state vectors
                    continue
                shared = array.ndim <= ndim
                if not shared and array.shape[0] != batch:
                    raise ValueError(
                        f"{op.name} has {array.shape[0]} broadcast parameters; the call has {batch}"
                    )
                array = array.astype(float)
                part = array.ravel().tolist() if shared else [array.reshape(batch, -1)]
            if not runs or runs[-1][0] != shared:
                runs.append((shared, []))
            runs[-1][1].extend(part)
    return tuple(
        ParameterRun(True, np.array(parts, dtype=float))
        if shared
        else ParameterRun(False, np.concatenate(parts, axis=1))
        for shared, parts in runs
    )


def parameter_texts(tape: QuantumScript) -> list[str]:
    """The gate parameters of each circuit in the tape as JSON lists, one per
    broadcast element (see :func:`qstore_pl.db.call_facts.parameter_texts`)."""
    batch = tape.batch_size or 1
    return call_facts.parameter_texts(parameter_runs(tape, batch), batch)


def facts_of(tape: QuantumScript) -> CallFacts:
    """What the delivery needs from the tape beside the backend's amplitudes."""
    batch = tape.batch_size or 1
    return CallFacts(structure_hash(tape), batch, parameter_runs(tape, batch))


def facts_with_states(tape: QuantumScript, states: np.ndarray) -> CallFacts | None:
    """The facts of a tape whose backend kept its states, ``(batch, amplitudes)``;
    ``None`` when those are not the tape's states over :func:`state_wires` (a backend's
    states over the tape's own wires: simulate instead). The backend kept one row per
    broadcast element, so the rows give the batch size (see :func:`parameter_runs`)."""
    text, width = _structure(tape)
    if states.shape[1] != 2**width:
        return None
    try:
        runs = parameter_runs(tape, len(states))
    except ValueError:  # rows that do not match the tape's broadcast
        return None
    return CallFacts(_digest(text), len(states), runs)


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
