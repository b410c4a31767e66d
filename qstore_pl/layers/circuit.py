"""The declarative circuit behind the high-level ``QuantumLayer`` (Keras and torch).

Q-Store users describe a layer by its size and parts (encoding, ansatz, entanglement,
measurement) rather than by writing a QNode. :class:`LayerCircuit` turns that
description into a circuit function with TorchLayer's signature
``(inputs, weights)``, the weight shape, and a JSON-able config to rebuild it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import pennylane as qml
from pennylane.devices import Device

from qstore_pl.layers.device_choice import make_device
from qstore_pl.templates import (
    AmplitudeEncoding,
    AngleEncoding,
    DataReuploading,
    HardwareEfficientAnsatz,
)
from qstore_pl.templates.hardware_efficient import ENTANGLEMENTS

ENCODINGS = ("angle", "amplitude")
ANSATZE = ("hardware_efficient", "strongly_entangling", "reuploading")
#: Named measurements; a sequence of Pauli words (e.g. ``("ZZII", "XIXI")``) also works.
MEASUREMENTS = ("z", "x", "y", "probs")
_PAULI = {"z": qml.Z, "x": qml.X, "y": qml.Y}


@dataclass(frozen=True)
class LayerCircuit:
    """A layer's circuit: encoding, ``depth`` ansatz layers, measurement.

    Parameters
    ----------
    n_qubits : int
        Width of the circuit.
    depth : int
        Number of ansatz layers (for ``"reuploading"``: encoding + ansatz repeats).
    encoding : {"angle", "amplitude"}
        ``"angle"``: one feature per qubit (at most ``n_qubits`` features), rotations
        about ``encoding_axis``. ``"amplitude"``: up to ``2**n_qubits`` features,
        padded with zeros and normalised.
    ansatz : {"hardware_efficient", "strongly_entangling", "reuploading"}
        Trainable part. ``"reuploading"`` re-encodes the (angle-encoded) data before
        every layer.
    entanglement : {"linear", "ring", "full"}
        CNOT pattern of ``"hardware_efficient"`` and ``"reuploading"``.
    measurement : str or Sequence[str]
        ``"z"``, ``"x"``, ``"y"`` (that Pauli's expectation on every qubit),
        ``"probs"`` (all ``2**n_qubits`` probabilities) or Pauli words, one
        expectation each.
    rotations : Sequence[str]
        Trainable rotations per qubit and layer (hardware-efficient, reuploading).
    encoding_axis : str
        Rotation axis (or axes, e.g. ``"XY"``) of the angle encoding.
    scaling : float
        Factor on the features before angle encoding.
    """

    n_qubits: int
    depth: int
    encoding: str = "angle"
    ansatz: str = "hardware_efficient"
    entanglement: str = "linear"
    measurement: str | Sequence[str] = "z"  # a sequence becomes a tuple of words
    rotations: tuple[str, ...] = ("RY", "RZ")
    encoding_axis: str = "Y"
    scaling: float = 1.0
    _wires: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("n_qubits", "depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"{name} must be an integer, got {value!r} ({type(value).__name__}); "
                    f"e.g. {name}=4"
                )
        if self.n_qubits < 1 or self.depth < 1:
            raise ValueError(
                f"n_qubits and depth must be at least 1, got {self.n_qubits} and {self.depth}"
            )
        _one_of("encoding", self.encoding, ENCODINGS)
        _one_of("ansatz", self.ansatz, ANSATZE)
        _one_of("entanglement", self.entanglement, ENTANGLEMENTS)
        if self.ansatz == "reuploading" and self.encoding != "angle":
            raise ValueError(
                "ansatz='reuploading' re-encodes the data with rotations; use encoding='angle'"
            )
        if not isinstance(self.measurement, str):
            words = tuple(str(w).upper() for w in self.measurement)
            bad = [w for w in words if len(w) != self.n_qubits or set(w) - set("IXYZ")]
            if not words or bad:
                raise ValueError(
                    f"measurement Pauli words must have {self.n_qubits} letters from IXYZ, "
                    f"got {bad or 'none'}"
                )
            object.__setattr__(self, "measurement", words)
        else:
            _one_of("measurement", self.measurement, MEASUREMENTS)
        object.__setattr__(self, "rotations", tuple(self.rotations))
        object.__setattr__(self, "_wires", tuple(range(int(self.n_qubits))))

    # ------------------------------------------------------------- shapes
    @property
    def max_features(self) -> int:
        """Largest input width the encoding takes."""
        return 2**self.n_qubits if self.encoding == "amplitude" else self.n_qubits

    @property
    def output_dim(self) -> int:
        """Outputs per sample."""
        if self.measurement == "probs":
            return 2**self.n_qubits
        if isinstance(self.measurement, tuple):
            return len(self.measurement)
        return self.n_qubits

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"weights": shape}`` for TorchLayer / KerasLayer."""
        n, depth = self.n_qubits, self.depth
        if self.ansatz == "strongly_entangling":
            shape = qml.StronglyEntanglingLayers.shape(n_layers=depth, n_wires=n)
        elif self.ansatz == "reuploading":
            shape = DataReuploading.shape(depth, n, self.rotations)
        else:
            shape = HardwareEfficientAnsatz.shape(depth, n, self.rotations)
        return {"weights": tuple(shape)}

    # ------------------------------------------------------------ circuit
    def qfunc(self) -> Callable:
        """The circuit function ``(inputs, weights) -> measurements``."""
        wires = self._wires

        def layer_circuit(inputs, weights):
            self._check_width(inputs)
            if self.ansatz == "reuploading":
                DataReuploading(
                    inputs,
                    weights,
                    wires,
                    rotations=self.rotations,
                    entanglement=self.entanglement,
                    scaling=self.scaling,
                    encoding=self.encoding_axis,
                )
            else:
                self._encode(inputs)
                if self.ansatz == "strongly_entangling":
                    qml.StronglyEntanglingLayers(weights, wires=wires)
                else:
                    HardwareEfficientAnsatz(
                        weights, wires, rotations=self.rotations, entanglement=self.entanglement
                    )
            return self._measure()

        return layer_circuit

    def qnode(
        self,
        device: str | Device,
        *,
        interface: str = "auto",
        diff_method: str = "best",
        shots: int | None = None,
        gradient_kwargs: dict | None = None,
    ) -> qml.QNode:
        """The QNode the Keras and torch ``QuantumLayer`` train: this circuit on ``device``
        (a name or a device; a name gets ``n_qubits`` wires), with ``shots`` per circuit
        (``None``: the device's)."""
        return qml.QNode(
            self.qfunc(),
            make_device(device, self.n_qubits),
            interface=interface,
            diff_method=diff_method,
            gradient_kwargs=gradient_kwargs,
            **({} if shots is None else {"shots": shots}),
        )

    def _check_width(self, inputs) -> None:
        width = qml.math.shape(inputs)[-1]
        if width > self.max_features:
            raise ValueError(
                f"{width} features do not fit {self.encoding} encoding on {self.n_qubits} "
                f"qubits (at most {self.max_features}); reduce them (e.g. PCA) or add qubits"
            )

    def _encode(self, inputs) -> None:
        if self.encoding == "amplitude":
            AmplitudeEncoding(inputs, self._wires, pad_with=0.0, normalize=True)
        else:
            AngleEncoding(inputs, self._wires, rotation=self.encoding_axis, scaling=self.scaling)

    def _measure(self):
        if self.measurement == "probs":
            return qml.probs(wires=self._wires)
        if not isinstance(self.measurement, str):  # Pauli words (a tuple since __post_init__)
            return [qml.expval(qml.pauli.string_to_pauli_word(word)) for word in self.measurement]
        pauli = _PAULI[self.measurement]
        return [qml.expval(pauli(w)) for w in self._wires]

    # -------------------------------------------------------------- config
    def to_config(self) -> dict:
        """JSON-able fields; ``LayerCircuit(**config)`` rebuilds the circuit."""
        config = asdict(self)
        config.pop("_wires")
        config["rotations"] = list(self.rotations)
        if isinstance(self.measurement, tuple):
            config["measurement"] = list(self.measurement)
        return config


def _one_of(name: str, value, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
