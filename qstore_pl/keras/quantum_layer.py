"""``QuantumLayer`` for Keras: a circuit described by size and parts, not by a QNode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from pennylane.devices import Device

from qstore_pl.keras.layer import KerasLayer
from qstore_pl.keras.loading import rebuild_device
from qstore_pl.layers.circuit import LayerCircuit
from qstore_pl.layers.qnode_spec import describe_device


@keras.saving.register_keras_serializable(package="qstore_pl")
class QuantumLayer(KerasLayer):
    """A trainable quantum layer in the style of Q-Store's ``QuantumLayer``.

    Parameters
    ----------
    n_qubits, depth : int
        Circuit width and number of ansatz layers.
    encoding, ansatz, entanglement, measurement
        See :class:`qstore_pl.layers.circuit.LayerCircuit`.
    device : str or Device
        ``"qstore.router"`` (default) or any PennyLane device name or instance.
    diff_method : str
        The QNode's differentiation method.
    shots : int, optional
        Shots per circuit (``None``: exact expectation values).
    gradient_kwargs : dict, optional
        Options of the gradient method (e.g. SPSA's ``h``); not saved in the config.
    **kwargs
        ``rotations``, ``encoding_axis``, ``scaling`` go to the circuit; the rest
        (``weight_specs``, ``input_gradients``, ``name``, ...) to :class:`KerasLayer`.

    Notes
    -----
    Everything needed to rebuild the layer is in its config, so ``model.save`` /
    ``keras.models.load_model`` need no registration. A device instance is saved by
    name and wires only (its settings may hold secrets).

    Examples
    --------
    >>> layer = QuantumLayer(n_qubits=4, depth=2, encoding="angle", entanglement="ring")
    >>> model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(2)])
    """

    _CIRCUIT_KEYS = ("rotations", "encoding_axis", "scaling")

    def __init__(
        self,
        n_qubits: int,
        depth: int,
        encoding: str = "angle",
        ansatz: str = "hardware_efficient",
        entanglement: str = "linear",
        measurement: str | Sequence[str] = "z",
        device: str | Device = "qstore.router",
        diff_method: str = "best",
        shots: int | None = None,
        gradient_kwargs: dict | None = None,
        **kwargs: Any,
    ):
        circuit_options = {k: kwargs.pop(k) for k in self._CIRCUIT_KEYS if k in kwargs}
        self.circuit = LayerCircuit(
            n_qubits,
            depth,
            encoding=encoding,
            ansatz=ansatz,
            entanglement=entanglement,
            measurement=measurement,
            **circuit_options,
        )
        qnode = self.circuit.qnode(
            device, diff_method=diff_method, shots=shots, gradient_kwargs=gradient_kwargs
        )
        kwargs.pop("output_dim", None)
        super().__init__(
            qnode, self.circuit.weight_shapes(), output_dim=self.circuit.output_dim, **kwargs
        )

    def get_config(self) -> dict:
        base = keras.layers.Layer.get_config(self)
        return {
            **base,
            **self.circuit.to_config(),
            "device": describe_device(self.qnode.device),
            "diff_method": self.qnode.diff_method,
            "shots": self.qnode.shots.total_shots,
            "weight_specs": self._serialised_weight_specs(),
            "input_gradients": self.input_gradients,
            "compiled": self.compiled,
        }

    @classmethod
    def from_config(cls, config: dict) -> QuantumLayer:
        config = dict(config)
        config["device"] = rebuild_device(config["device"])
        config["weight_specs"] = cls._deserialised_weight_specs(config.get("weight_specs", {}))
        return cls(**config)
