"""What the database reads from an executed circuit: its identity, its parameters,
its final state and, for shot runs, its measured distribution."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.devices.qubit import get_final_state
from pennylane.measurements import CountsMP, ProbabilityMP, SampleMP
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.support.limits import current_limits

#: Longest parameter list stored with a state (Pinecone metadata is limited to 40 KB).
MAX_PARAMETERS_IN_TEXT = 1000


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
    observables = ";".join(_observable_text(m.obs) for m in tape.measurements)
    return f"{ops}|{measurements}|{observables}"


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


def parameter_texts(tape: QuantumScript) -> list[str]:
    """The gate parameters of each circuit in the tape as JSON lists, one per
    broadcast element (matrices and state vectors are left out).

    Parameters shared by every element (the weights) are formatted once, and
    consecutive parameters of a kind (shared, per element) in one ``json.dumps``:
    formatting is most of the cost of recording a batch.
    """
    batch = tape.batch_size or 1
    runs: list[list] = []  # [shared floats] or [per-element (batch, k) arrays], in order
    shared: list[bool] = []
    count = 0
    for op in tape.operations:
        ndims = op.ndim_params if op.batch_size else (None,) * len(op.data)
        for value, ndim in zip(op.data, ndims):
            if not isinstance(value, float | np.ndarray):
                value = qml.math.unwrap(value)
            array = np.asarray(value)
            if np.iscomplexobj(array) or array.size == 0:  # matrices and state vectors
                continue
            per_element = bool(op.batch_size) and ndim is not None and array.ndim > ndim
            if not runs or shared[-1] == per_element:
                runs.append([])
                shared.append(not per_element)
            if per_element:
                runs[-1].append(array.astype(float).reshape(batch, -1))
                count += runs[-1][-1].shape[1]
            else:
                runs[-1].extend(array.astype(float).ravel().tolist())
                count += array.size
    if count > MAX_PARAMETERS_IN_TEXT:
        return []
    pieces = [
        json.dumps(run)[1:-1]
        if is_shared
        else [json.dumps(row)[1:-1] for row in np.concatenate(run, axis=1).tolist()]
        for run, is_shared in zip(runs, shared)
    ]
    return [
        "[" + ", ".join(p if isinstance(p, str) else p[b] for p in pieces) + "]"
        for b in range(batch)
    ]


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
