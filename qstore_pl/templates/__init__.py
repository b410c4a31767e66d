"""Circuit templates that decompose to gates every qstore_pl backend runs."""

from qstore_pl.templates.encodings import AmplitudeEncoding, AngleEncoding
from qstore_pl.templates.hardware_efficient import HardwareEfficientAnsatz, entangling_pairs
from qstore_pl.templates.qcnn import QCNN, ClusterState, QCNNConvolution, QCNNPooling
from qstore_pl.templates.reuploading import DataReuploading

#: Gates every qstore_pl backend runs natively (lightning, qstore.qsim, qstore.batched,
#: default.qubit and IonQ's "qis" gate set); the templates here decompose to these only.
PORTABLE_GATES = frozenset(
    {
        "RX", "RY", "RZ", "CNOT", "Hadamard", "PauliX", "PauliY", "PauliZ",
        "S", "T", "SX", "SWAP", "IsingXX", "IsingYY", "IsingZZ",
    }
)  # fmt: skip

__all__ = [
    "PORTABLE_GATES",
    "QCNN",
    "AmplitudeEncoding",
    "AngleEncoding",
    "ClusterState",
    "DataReuploading",
    "HardwareEfficientAnsatz",
    "QCNNConvolution",
    "QCNNPooling",
    "entangling_pairs",
]
