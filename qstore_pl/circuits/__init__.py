"""Circuits as data (TensorFlow Quantum's core idea, for PennyLane tapes).

* :mod:`~qstore_pl.circuits.json_format`: exact, versioned JSON for any tape.
* :mod:`~qstore_pl.circuits.qasm`: OpenQASM 2.0 (qelib1) where it can express the circuit.
* :mod:`~qstore_pl.circuits.tensor`: numeric circuit tensors for frameworks without
  string tensors (Keras on JAX or torch).
* :class:`Symbol` / :class:`ParametrizedCircuit`: circuits with named placeholder
  parameters, bound to numpy, autograd, torch, JAX or TensorFlow values later.

* Conversion, symbols kept both ways: :mod:`~qstore_pl.circuits.qiskit_format`
  (``from_qiskit``/``to_qiskit``), :mod:`~qstore_pl.circuits.cirq_format`
  (``from_cirq``/``to_cirq``), :mod:`~qstore_pl.circuits.qasm3` (OpenQASM 3) and
  :mod:`~qstore_pl.circuits.ionq_format` (IonQ API JSON, qis and native gatesets);
  :mod:`~qstore_pl.circuits.angles` and :mod:`~qstore_pl.circuits.lowering` hold what
  they share.

Circuit collections as a torch ``Dataset`` or a ``tf.data`` pipeline moved to
:mod:`qstore_pl.datasets.circuits` (the names still answer here, with a warning).

Nothing here imports qstore_pl's devices, torch or TensorFlow; Qiskit and Cirq are
imported when a converter needs them, and IonQ's native compiler
(:mod:`qstore_pl.circuits.ionq_native`) when ``to_ionq_json(gateset="native")`` runs.
"""

from qstore_pl._moved import moved_attributes
from qstore_pl.circuits.cirq_format import from_cirq, to_cirq
from qstore_pl.circuits.ionq_format import from_ionq_json, to_ionq_json
from qstore_pl.circuits.json_format import (
    FORMAT_VERSION,
    measurement_from_dict,
    measurement_to_dict,
    operator_from_dict,
    operator_to_dict,
    register_operator,
    tape_from_dict,
    tape_from_json,
    tape_to_dict,
    tape_to_json,
)
from qstore_pl.circuits.parametrized import BindError, ParametrizedCircuit
from qstore_pl.circuits.qasm import from_openqasm, to_openqasm
from qstore_pl.circuits.qasm3 import from_qasm3, to_qasm3
from qstore_pl.circuits.qiskit_format import from_qiskit, to_qiskit
from qstore_pl.circuits.symbol import Symbol, symbol_array
from qstore_pl.circuits.tensor import (
    MAX_WIRES,
    OP_CODES,
    OP_VOCABULARY,
    OP_VOCABULARY_VERSION,
    decode_circuits,
    encode_circuits,
    row_width,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_WIRES",
    "OP_CODES",
    "OP_VOCABULARY",
    "OP_VOCABULARY_VERSION",
    "BindError",
    "ParametrizedCircuit",
    "Symbol",
    "decode_circuits",
    "encode_circuits",
    "from_cirq",
    "from_ionq_json",
    "from_openqasm",
    "from_qasm3",
    "from_qiskit",
    "measurement_from_dict",
    "measurement_to_dict",
    "operator_from_dict",
    "operator_to_dict",
    "register_operator",
    "row_width",
    "symbol_array",
    "tape_from_dict",
    "tape_from_json",
    "tape_to_dict",
    "tape_to_json",
    "to_cirq",
    "to_ionq_json",
    "to_openqasm",
    "to_qasm3",
    "to_qiskit",
]

__getattr__ = moved_attributes(
    __name__,
    dict.fromkeys(("CircuitDataset", "circuits_to_tf_dataset"), "qstore_pl.datasets.circuits"),
)
