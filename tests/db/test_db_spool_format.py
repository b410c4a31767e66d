"""The spool's raw-amplitude format: a call is spooled as one row holding the
backend's amplitudes as they came (complex64 or complex128, bit for bit), encoded
on the recorder thread into the states default.qubit gives; a spool an older
version left on disk (no amplitude columns, states already encoded) still drains."""

import json
import logging
import pickle
import sqlite3
import uuid

import numpy as np
import pennylane as qml
import pytest
from pennylane.tape import QuantumScript

from qstore_pl.callbacks import ExecutionRecord
from qstore_pl.db import StateRecorder, open_store
from qstore_pl.db import circuits as circuits_module
from qstore_pl.db.circuits import parameter_texts, structure_hash
from qstore_pl.db.encoding import encode_rows, namespace_for
from qstore_pl.db.spool import CircuitEntry, Spool

#: The spool schema before amplitudes were spooled raw, as older versions wrote it.
OLD_SCHEMA = """
CREATE TABLE pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, namespace TEXT NOT NULL,
    vector BLOB NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE circuits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, states INTEGER NOT NULL,
    tape BLOB NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE rejected (
    id TEXT PRIMARY KEY, namespace TEXT NOT NULL, vector BLOB NOT NULL,
    metadata TEXT NOT NULL, error TEXT NOT NULL);
"""


#: The circuits table of the version that spooled raw amplitudes beside the pickled
#: circuit (before the circuit's facts replaced the pickle).
PICKLED_TAPE_SCHEMA = """
CREATE TABLE circuits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, states INTEGER NOT NULL,
    tape BLOB NOT NULL, metadata TEXT NOT NULL, amplitudes BLOB, dtype TEXT);
"""


def batched_tape(batch: int = 5) -> QuantumScript:
    angles = np.linspace(0.1, 2.9, batch)
    return QuantumScript(
        [qml.RX(angles, 0), qml.RY(0.7, 1), qml.CNOT([0, 1]), qml.RZ(angles / 3, 1)],
        [qml.expval(qml.Z(0))],
    )


def default_qubit_states(tape: QuantumScript) -> np.ndarray:
    return np.asarray(qml.device("default.qubit").execute(tape.copy(measurements=[qml.state()])))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_raw_amplitudes_round_trip_bit_for_bit(tmp_path, dtype):
    rng = np.random.default_rng(0)
    amplitudes = (rng.normal(size=(6, 8)) + 1j * rng.normal(size=(6, 8))).astype(dtype)
    spool = Spool(tmp_path / "spool.sqlite")
    source = np.asfortranarray(amplitudes)  # not C-contiguous, as a backend's view may be
    spool.append([], [CircuitEntry("a", 6, pickle.dumps(batched_tape()), {"k": 1}, source)])
    source[:] = 0  # the backend reuses its memory once the call returns
    (spooled,) = spool.circuits(10)
    assert spooled.amplitudes.dtype == dtype
    assert spooled.amplitudes.tobytes() == amplitudes.tobytes()
    assert spooled.metadata == {"k": 1} and spool.counts() == (6, 0)
    spool.close()


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_a_call_is_one_row_and_its_states_are_default_qubits(tmp_path, dtype):
    tape = batched_tape()
    expected = default_qubit_states(tape)
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite", max_delay=3600)
    states = (expected * np.exp(1.3j)).astype(dtype)  # a backend's global phase and rounding
    record = ExecutionRecord(tape, None, "execute", "qstore.batched", None, 0.0, states=states)
    recorder.on_execution(record)
    (spooled,) = recorder.spool.circuits(10)  # one row, encoded later by the thread
    assert spooled.amplitudes.tobytes() == states.tobytes()
    recorder.flush(timeout=30)
    recorder.close()
    stored = sorted(store.states(), key=lambda s: s.metadata["batch_index"])
    assert [s.metadata["parameters"] for s in stored] == parameter_texts(tape)
    assert {s.metadata["circuit_hash"] for s in stored} == {structure_hash(tape)}
    tolerance = 1e-6 if dtype == np.complex64 else 1e-7  # stored as float32
    for state, row in zip(stored, expected):
        assert abs(np.vdot(state.state, row)) ** 2 == pytest.approx(1.0, abs=tolerance)
    (vectors, _) = encode_rows(expected, "pure")
    stored_vectors = [encode_rows(s.state[np.newaxis], "pure")[0][0] for s in stored]
    np.testing.assert_allclose(stored_vectors, vectors, atol=10 * tolerance)
    store.close()


def test_amplitudes_that_cannot_be_encoded_are_skipped_with_a_warning(tmp_path, caplog):
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite")
    tape = batched_tape(2)
    states = np.full((2, 4), np.nan, dtype=np.complex128)
    with caplog.at_level(logging.WARNING, logger="qstore_pl.db.recorder"):
        recorder.on_execution(
            ExecutionRecord(tape, None, "execute", "qstore.batched", None, 0.0, states=states)
        )
        recorder.flush(timeout=30)
    stats = recorder.stats()
    recorder.close()
    assert (stats.skipped, stats.waiting, stats.delivered) == (1, 0, 0)
    assert "NaN" in caplog.text
    assert list(store.states()) == []


def test_a_spool_in_the_old_format_still_drains(tmp_path):
    """An older version left an encoded state in ``pending`` and a circuit to simulate
    in ``circuits``, in its own schema; a recorder of this version stores both."""
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    state = np.array([np.cos(0.4), 0, 0, 1j * np.sin(0.4)])
    (vector,), _ = encode_rows(state[np.newaxis], "pure")
    meta = {"kind": "pure", "n_qubits": 2, "circuit_hash": "0123", "tags": ["old"]}
    old.execute(
        "INSERT INTO pending (id, namespace, vector, metadata) VALUES (?, ?, ?, ?)",
        (str(uuid.uuid4()), namespace_for("pure", 2), vector.tobytes(), json.dumps(meta)),
    )
    tape = batched_tape(3)
    old.execute(
        "INSERT INTO circuits (id, states, tape, metadata) VALUES (?, ?, ?, ?)",
        (str(uuid.uuid4()), 3, pickle.dumps(tape), json.dumps({"tags": ["old"], "run": "x"})),
    )
    old.commit()
    old.close()

    store = open_store(path=None)
    recorder = StateRecorder(store, spool=path)
    stats = recorder.stats()  # the delivery thread may have sent some already
    assert stats.waiting + stats.delivered == 4
    recorder.flush(timeout=30)
    recorder.close()
    assert Spool(path).counts() == (0, 0)
    stored = list(store.states())
    assert len(stored) == 4 and all(s.metadata["tags"] == ["old"] for s in stored)
    (kept,) = [s for s in stored if s.metadata["circuit_hash"] == "0123"]
    assert abs(np.vdot(kept.state, state)) ** 2 == pytest.approx(1.0, abs=1e-6)
    simulated = [s for s in stored if s.metadata["circuit_hash"] == structure_hash(tape)]
    for row in default_qubit_states(tape):
        assert max(abs(np.vdot(s.state, row)) ** 2 for s in simulated) == pytest.approx(
            1.0, abs=1e-6
        )
    store.close()


def test_appends_leave_the_log_to_checkpoint_which_moves_it_into_the_file(tmp_path):
    """The training thread's commits do not copy the log into the file (and fsync it)
    at SQLite's default 4 MiB; the forwarding thread's checkpoint does."""
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    amplitudes = np.ones((32, 256), np.complex128)  # 128 KiB a call
    for call in range(40):  # 5 MiB of log
        spool.append([], [CircuitEntry(str(call), 32, b"tape", {}, amplitudes)])
    before = path.stat().st_size
    spool.checkpoint()
    assert before < 1 << 20 and path.stat().st_size > 5 << 20
    assert spool.counts() == (40 * 32, 0)
    spool.close()


def test_amplitudes_over_other_wires_than_recorded_are_simulated_instead(tmp_path):
    """States are recorded over wires 0..max; a backend's states over the tape's own
    two wires (4 amplitudes for wires 0 and 2) are not those: the thread simulates."""
    tape = QuantumScript([qml.RX(np.array([0.3, 1.1]), 0), qml.CNOT([0, 2])], [qml.probs()])
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=tmp_path / "spool.sqlite")
    wrong = np.full((2, 4), 0.5, dtype=np.complex128)
    recorder.on_execution(
        ExecutionRecord(tape, None, "execute", "qstore.batched", None, 0.0, states=wrong)
    )
    recorder.flush(timeout=30)
    recorder.close()
    assert store.stats().namespaces == {"pure-3q": 2}

    @qml.qnode(qml.device("default.qubit", wires=3))
    def over_0_1_2(x):
        qml.RX(x, 0)
        qml.CNOT([0, 2])
        return qml.state()

    for row in (over_0_1_2(0.3), over_0_1_2(1.1)):
        (hit,) = store.query_similar(row, top_k=1)
        assert hit.fidelity == pytest.approx(1.0, abs=1e-6)
    store.close()


def test_a_spool_of_pickled_circuits_with_amplitudes_drains_from_the_amplitudes(
    tmp_path, monkeypatch
):
    """The previous version spooled the pickled circuit beside the backend's amplitudes;
    such a row is encoded from its amplitudes (nothing simulated), with the circuit's
    hash and parameters."""
    path = tmp_path / "previous.sqlite"
    previous = sqlite3.connect(path)
    previous.executescript(PICKLED_TAPE_SCHEMA)
    tape = batched_tape(3)
    expected = default_qubit_states(tape)
    previous.execute(
        "INSERT INTO circuits (id, states, tape, metadata, amplitudes, dtype) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            3,
            pickle.dumps(tape),
            json.dumps({"run": "x"}),
            expected.astype(np.complex64).tobytes(),
            np.dtype(np.complex64).str,
        ),
    )
    previous.commit()
    previous.close()

    def no_simulation(tape):
        raise AssertionError("simulated a call whose amplitudes were spooled")

    monkeypatch.setattr(circuits_module, "final_states", no_simulation)
    store = open_store(path=None)
    recorder = StateRecorder(store, spool=path)
    recorder.flush(timeout=30)
    recorder.close()
    stored = sorted(store.states(), key=lambda s: s.metadata["batch_index"])
    assert [s.metadata["parameters"] for s in stored] == parameter_texts(tape)
    assert {s.metadata["circuit_hash"] for s in stored} == {structure_hash(tape)}
    for state, row in zip(stored, expected):
        assert abs(np.vdot(state.state, row)) ** 2 == pytest.approx(1.0, abs=1e-6)
    store.close()
