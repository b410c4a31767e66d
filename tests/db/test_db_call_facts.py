"""A call whose backend kept its states is spooled with its circuit's facts as plain
data (structure hash, parameters) instead of the pickled circuit: they give what the
circuit gives, survive the spool bit for bit, and the delivery encodes such calls
without PennyLane (a delivery process then starts without importing it)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pennylane as qml
from pennylane.tape import QuantumScript

from qstore_pl.db.circuits import facts_with_states, parameter_texts, structure_hash
from qstore_pl.db.spool import CircuitEntry, Spool


def mixed_tape() -> QuantumScript:
    return QuantumScript(
        [
            qml.RX(np.array([0.1, 0.2]), 0),
            qml.RY(0.3, 0),
            qml.Rot(np.array([1.0, 2.0]), 0.5, np.array([3.0, 4.0]), 1),
            qml.StatePrep(np.array([1, 0, 0, 0j]), [2, 3]),
            qml.RZ(np.array([5.0, 6.0]), 1),
            qml.CRX(0.25, [0, 1]),
        ],
        [qml.expval(qml.Z(0))],
    )


def test_facts_give_the_circuits_hash_and_parameters_through_the_spool(tmp_path):
    tape = mixed_tape()
    facts = facts_with_states(tape, np.zeros((2, 16), complex))
    assert facts is not None and facts.batch == 2
    assert facts.circuit_hash == structure_hash(tape)
    assert facts.parameter_texts() == parameter_texts(tape)
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append([], [CircuitEntry("a", 2, b"", {}, np.zeros((2, 16), complex), facts)])
    (spooled,) = spool.circuits(10)
    spool.close()
    assert spooled.pickled_tape == b"" and spooled.facts.circuit_hash == facts.circuit_hash
    texts = spooled.facts.parameter_texts()
    assert texts == parameter_texts(tape)
    assert json.loads(texts[1]) == [0.2, 0.3, 2.0, 0.5, 4.0, 6.0, 0.25]


def test_states_over_other_wires_or_another_batch_have_no_facts():
    tape = mixed_tape()  # wires 0..3: 16 amplitudes, 2 broadcast elements
    assert facts_with_states(tape, np.zeros((2, 8), complex)) is None
    assert facts_with_states(tape, np.zeros((3, 16), complex)) is None
    labelled = QuantumScript([qml.RX(0.1, "a"), qml.CNOT(["a", 3])], [qml.probs()])
    assert facts_with_states(labelled, np.zeros((1, 4), complex)).circuit_hash == (
        structure_hash(labelled)
    )


DELIVER_WITHOUT_PENNYLANE = """
import sys
import numpy as np
from qstore_pl.db.call_facts import CallFacts, ParameterRun
from qstore_pl.db.open import open_store
from qstore_pl.db.recorder import StateRecorder
from qstore_pl.db.spool import CircuitEntry, Spool

spool = Spool(sys.argv[1])
facts = CallFacts("0123456789abcdef", 2, (ParameterRun(False, np.array([[0.5], [1.5]])),))
rows = np.array([[1, 1j], [0, 1]], np.complex64)  # unnormalised: the delivery normalises
call = "6f1d9e0c-4a8b-4c57-9a43-0d4c1b2e7f10"
spool.append([], [CircuitEntry(call, 2, b"", {"run": "r"}, rows, facts)])
store = open_store(path=None)
recorder = StateRecorder(store, spool=sys.argv[1], delivery="thread")
recorder.flush(timeout=30)
recorder.close()
states = sorted(store.states(), key=lambda s: s.metadata["batch_index"])
assert [s.metadata["parameters"] for s in states] == ["[0.5]", "[1.5]"], states
assert {s.metadata["circuit_hash"] for s in states} == {"0123456789abcdef"}
assert abs(abs(np.vdot(states[0].state, [1, 1j])) ** 2 / 2 - 1) < 1e-6
assert "pennylane" not in sys.modules, "the delivery imported PennyLane"
print("delivered", len(states))
"""


def test_the_delivery_encodes_such_calls_without_importing_pennylane(tmp_path):
    # a fresh interpreter: this one has PennyLane loaded already
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DELIVER_WITHOUT_PENNYLANE), str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "delivered 2"
