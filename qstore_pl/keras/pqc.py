"""TFQ's ``PQC`` and ``ControlledPQC`` for Keras 3: circuits as layer inputs.

Keras on JAX and torch has no string tensors, so data circuits travel as circuit
tensors (:func:`qstore_pl.circuits.encode_circuits`, one ``(max_ops, k)`` block per
circuit) on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import ops
from pennylane.devices import Device

from qstore_pl.circuits import ParametrizedCircuit, operator_from_dict, operator_to_dict
from qstore_pl.keras.backend_ops import angle_initializer, cached_op, supports_xla
from qstore_pl.keras.loading import rebuild_device
from qstore_pl.layers.circuit_batch import CircuitBatch
from qstore_pl.layers.device_choice import make_device
from qstore_pl.layers.qnode_spec import describe_device


class _CircuitInputLayer(keras.layers.Layer):
    """Shared parts: the device, the batch runner, serialisation."""

    _PER_SAMPLE = False

    def __init__(
        self,
        model_circuit: ParametrizedCircuit,
        observables: Sequence,
        device: str | Device = "qstore.router",
        diff_method: str = "best",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not isinstance(model_circuit, ParametrizedCircuit):
            raise TypeError(
                "model_circuit must be a qstore_pl.circuits.ParametrizedCircuit (build one "
                f"with ParametrizedCircuit.from_function), got {type(model_circuit).__name__}"
            )
        self.model_circuit = model_circuit
        self.observables = list(observables)
        n_wires = len(model_circuit.wires)
        self.batch = CircuitBatch(
            model_circuit,
            self.observables,
            make_device(device, n_wires),
            diff_method,
            per_sample_symbols=self._PER_SAMPLE,
        )
        self.supports_jit = supports_xla()
        self._host = self.batch.host_function()
        self._ops: dict = {}
        self.built = True  # weights (if any) are made here; nothing depends on input shapes

    @property
    def output_dim(self) -> int:
        return len(self.observables)

    def _run(self, circuits, *symbol_args, training=None):
        circuits = ops.cast(circuits, self.compute_dtype)
        args = [ops.cast(a, self.compute_dtype) for a in symbol_args]
        op = cached_op(self._ops, self._host, self.output_dim, training is not False)
        return op(circuits, *args)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "model_circuit": self.model_circuit.to_dict(),
            "observables": [operator_to_dict(o) for o in self.observables],
            "device": describe_device(self.batch.device),
            "diff_method": self.batch.diff_method,
        }

    @classmethod
    def _rebuilt(cls, config: Mapping) -> dict:
        config = dict(config)
        config["model_circuit"] = ParametrizedCircuit.from_dict(config["model_circuit"])
        config["observables"] = [operator_from_dict(o) for o in config["observables"]]
        config["device"] = rebuild_device(config["device"])
        return config


@keras.saving.register_keras_serializable(package="qstore_pl")
class PQC(_CircuitInputLayer):
    r"""Append a trainable model circuit to each input circuit; output expectation values.

    Parameters
    ----------
    model_circuit : ParametrizedCircuit
        Its symbols become the layer's trainable weights (one variable per symbol
        array, initialised uniformly in :math:`[0, 2\pi)` unless ``initializer`` says
        otherwise).
    observables : Sequence[Operator]
        One output each: the expectation value after data circuit + model circuit.
    device : str or Device
        Default ``"qstore.router"``: each structure of data circuit runs as one batch.
    diff_method : str
        Passed to ``qml.execute``.
    initializer : keras initializer, optional
        For every symbol array.

    Notes
    -----
    Inputs are circuit tensors of shape ``(batch, max_ops, k)`` from
    :func:`qstore_pl.circuits.encode_circuits` (float32 under Keras's default dtype, so
    data-circuit angles carry float32 precision). The data circuits get no gradients,
    as in TFQ.
    """

    def __init__(
        self,
        model_circuit: ParametrizedCircuit,
        observables: Sequence,
        initializer: Any = None,
        *,
        device: str | Device = "qstore.router",
        diff_method: str = "best",
        **kwargs: Any,
    ):
        super().__init__(model_circuit, observables, device, diff_method, **kwargs)
        self.initializer = keras.initializers.get(initializer or angle_initializer())
        self.symbol_weights = {
            name: self.add_weight(name=name, shape=shape, initializer=self.initializer)
            for name, shape in model_circuit.symbols.items()
        }

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        weights = [self.symbol_weights[name] for name in self.model_circuit.symbols]
        return self._run(inputs, *weights, training=training)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return (input_shape[0], self.output_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "initializer": keras.saving.serialize_keras_object(self.initializer),
        }

    @classmethod
    def from_config(cls, config: Mapping) -> PQC:
        config = cls._rebuilt(config)
        config["initializer"] = keras.saving.deserialize_keras_object(config["initializer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="qstore_pl")
class ControlledPQC(_CircuitInputLayer):
    """Like :class:`PQC`, but the symbol values are a second, differentiable input.

    Call it on ``[circuits, values]`` where ``values`` has shape
    ``(batch, n_symbol_values)``: every symbol array of the model circuit, flattened
    in the order of ``model_circuit.symbols``. Upstream layers (e.g. a Dense that
    predicts the angles) train through it.
    """

    _PER_SAMPLE = True

    def call(self, inputs: Sequence[Any], training: bool | None = None) -> Any:
        circuits, values = inputs
        expected = self.batch.n_symbol_values
        if values.shape[-1] != expected:  # static: check before the host callback
            raise ValueError(
                f"symbol values have {values.shape[-1]} columns; expected {expected}: one row "
                f"per circuit, the symbols {dict(self.model_circuit.symbols)} flattened in "
                "that order"
            )
        return self._run(circuits, values, training=training)

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple:
        return (input_shape[0][0], self.output_dim)

    @classmethod
    def from_config(cls, config: Mapping) -> ControlledPQC:
        return cls(**cls._rebuilt(config))
