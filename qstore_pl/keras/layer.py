"""``KerasLayer``: a QNode as a Keras 3 layer on the TensorFlow, JAX and torch backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import pennylane as qml
from keras import ops

from qstore_pl.keras.backend_ops import angle_initializer, cached_op, supports_xla
from qstore_pl.keras.loading import rebuild_device
from qstore_pl.layers.compiled import compiled_host_function
from qstore_pl.layers.qnode_spec import (
    describe_device,
    describe_qnode_options,
    host_function,
    normalise_weight_shapes,
    output_width,
)

#: ``add_weight`` arguments a weight spec may set.
WEIGHT_SPEC_KEYS = ("initializer", "regularizer", "constraint", "trainable", "dtype")
_SERIALISED_SPEC_KEYS = ("initializer", "regularizer", "constraint")


@keras.saving.register_keras_serializable(package="qstore_pl")
class KerasLayer(keras.layers.Layer):
    r"""A QNode as a Keras layer: ``inputs`` come from the model, weights are trained.

    Works with ``KERAS_BACKEND`` set to ``"tensorflow"``, ``"jax"`` or ``"torch"``. The
    circuit runs on the host and its gradient comes from the device's vector-Jacobian
    product through PennyLane's autograd interface, so the layer does not depend on
    PennyLane's deprecated TensorFlow interface. On ``qstore.router`` a training step
    costs one forward pass and one adjoint VJP per batch.

    Parameters
    ----------
    qnode : qml.QNode
        Its function takes the data as an argument named ``inputs`` (shape
        ``(batch, n_features)``; the circuit must broadcast over the leading axis, as
        PennyLane's gates and templates do) and one argument per entry of
        ``weight_shapes``. It returns expectation values, variances or probabilities.
    weight_shapes : Mapping[str, int or tuple]
        Shape of each trainable argument.
    output_dim : int, optional
        Number of outputs per sample; read from the circuit when omitted, checked
        against it when given.
    weight_specs : Mapping[str, dict], optional
        Per weight, ``add_weight`` arguments: ``initializer``, ``regularizer``,
        ``constraint``, ``trainable``, ``dtype``. The default initializer draws
        uniformly from :math:`[0, 2\pi)`.
    input_gradients : bool
        Compute gradients for the inputs (needed when trainable layers come before
        this one). Turning it off saves work on parameter-shift backends.
    compiled : bool
        On ``qstore.router``, record the circuit once per structure and bind each
        batch into the routed backend's compiled program instead of calling the QNode
        (:mod:`qstore_pl.layers.compiled`; default). Circuits it cannot express run
        through the QNode with one warning saying why. ``False`` always calls the QNode.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Notes
    -----
    Saving: ``model.save`` stores the circuit by its registered Keras name, so decorate
    the QNode or its function with ``@keras.saving.register_keras_serializable()``. A
    registered QNode comes back with its own device. For a registered function the
    device is stored by name and wires only (router configs and callbacks are runtime
    settings and may hold secrets), so the loaded layer runs on a default-configured
    device of the same name. With the TensorFlow backend the layer opts out of XLA compilation
    (host callbacks cannot be compiled); with JAX it works under ``jax.jit``; with
    torch, ``torch.compile`` compiles around it.

    Examples
    --------
    >>> dev = qml.device("qstore.router", wires=2)
    >>> @qml.qnode(dev)
    ... def circuit(inputs, weights):
    ...     qml.AngleEmbedding(inputs, wires=range(2))
    ...     qml.BasicEntanglerLayers(weights, wires=range(2))
    ...     return [qml.expval(qml.Z(i)) for i in range(2)]
    >>> layer = KerasLayer(circuit, {"weights": (3, 2)})
    >>> model = keras.Sequential([keras.Input((2,)), layer, keras.layers.Dense(1)])
    """

    def __init__(
        self,
        qnode: qml.QNode,
        weight_shapes: Mapping,
        output_dim: int | None = None,
        weight_specs: Mapping[str, Mapping] | None = None,
        input_gradients: bool = True,
        compiled: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.qnode = qnode
        self.weight_shapes = normalise_weight_shapes(qnode, weight_shapes)
        self.weight_specs = _check_weight_specs(weight_specs or {}, self.weight_shapes)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.input_gradients = bool(input_gradients)
        self.supports_jit = supports_xla()
        self.compiled = bool(compiled)
        names = list(self.weight_shapes)
        self._host = compiled_host_function(
            qnode, names, host_function(qnode, names, self.input_gradients), self.compiled
        )
        self._ops: dict[bool, object] = {}
        self.qnode_weights: dict[str, keras.Variable] = {}
        self._n_features: int | None = None

    # ----------------------------------------------------------------- build
    def build(self, input_shape: Sequence[int | None]) -> None:
        n_features = input_shape[-1]
        if n_features is None:
            raise ValueError(
                f"{self.name}: the last input dimension must be known; give keras.Input a shape"
            )
        self._n_features = int(n_features)
        width = output_width(self.qnode, self.weight_shapes, self._n_features)
        if self.output_dim is not None and self.output_dim != width:
            raise ValueError(
                f"{self.name}: output_dim={self.output_dim} but the circuit returns {width} "
                "numbers per sample; drop output_dim or fix the circuit"
            )
        self.output_dim = width
        for name, shape in self.weight_shapes.items():
            spec = dict(self.weight_specs.get(name, {}))
            spec.setdefault("initializer", angle_initializer())
            self.qnode_weights[name] = self.add_weight(name=name, shape=shape, **spec)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        if self.output_dim is None:
            self.build(input_shape)
        return (*input_shape[:-1], self.output_dim)

    # ------------------------------------------------------------------ call
    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        lead = tuple(x.shape[:-1])
        if len(lead) != 1:
            x = ops.reshape(x, (-1, self._n_features))
        weights = [
            ops.cast(self.qnode_weights[name], self.compute_dtype) for name in self.weight_shapes
        ]
        y = self._op(keep_vjp=training is not False)(x, *weights)
        if len(lead) != 1:
            y = ops.reshape(y, (-1, *lead[1:], self.output_dim))
        return y

    def _op(self, keep_vjp: bool):
        assert self.output_dim is not None, "build() sets output_dim before any call"
        return cached_op(self._ops, self._host, self.output_dim, keep_vjp)

    # ---------------------------------------------------------- serialisation
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            qnode={
                **_serialise_circuit(self.qnode),
                "device": describe_device(self.qnode.device),
                **describe_qnode_options(self.qnode),
            },
            weight_shapes={name: list(shape) for name, shape in self.weight_shapes.items()},
            output_dim=self.output_dim,
            weight_specs=self._serialised_weight_specs(),
            input_gradients=self.input_gradients,
            compiled=self.compiled,
        )
        return config

    def _serialised_weight_specs(self) -> dict:
        return {
            name: {
                key: keras.saving.serialize_keras_object(value)
                if key in _SERIALISED_SPEC_KEYS
                else value
                for key, value in spec.items()
            }
            for name, spec in self.weight_specs.items()
        }

    @staticmethod
    def _deserialised_weight_specs(specs: Mapping) -> dict:
        return {
            name: {
                key: keras.saving.deserialize_keras_object(value)
                if key in _SERIALISED_SPEC_KEYS
                else value
                for key, value in spec.items()
            }
            for name, spec in specs.items()
        }

    @classmethod
    def from_config(cls, config: dict) -> KerasLayer:
        config = dict(config)
        qnode = _rebuild_qnode(config.pop("qnode"))
        config["weight_specs"] = cls._deserialised_weight_specs(config.get("weight_specs", {}))
        return cls(qnode, **config)


def _check_weight_specs(specs: Mapping, weight_shapes: Mapping) -> dict[str, dict]:
    unknown = sorted(set(specs) - set(weight_shapes))
    if unknown:
        raise ValueError(f"weight_specs names {unknown}, which are not in weight_shapes")
    checked = {}
    for name, spec in specs.items():
        bad = sorted(set(spec) - set(WEIGHT_SPEC_KEYS))
        if bad:
            raise ValueError(
                f"weight_specs[{name!r}] has {bad}; allowed keys are {WEIGHT_SPEC_KEYS}"
            )
        checked[name] = {
            key: _get(key, value) if key in _SERIALISED_SPEC_KEYS else value
            for key, value in spec.items()
        }
    return checked


def _get(kind: str, value):
    getter = {
        "initializer": keras.initializers.get,
        "regularizer": keras.regularizers.get,
        "constraint": keras.constraints.get,
    }[kind]
    return getter(value)


def _serialise_circuit(qnode: qml.QNode) -> dict:
    """How load_model finds the circuit again: a registered QNode (device included) or a
    registered circuit function (the device is rebuilt by name and wires)."""
    for obj, key in ((qnode, "registered_qnode"), (qnode.func, "registered_function")):
        name = keras.saving.get_registered_name(obj)
        if keras.saving.get_registered_object(name) is obj:
            return {key: name}
    raise ValueError(
        f"cannot save the circuit {qnode.func.__name__!r}: decorate the QNode or its function "
        "with @keras.saving.register_keras_serializable() so that load_model can rebuild it"
    )


def _rebuild_qnode(described: Mapping) -> qml.QNode:
    if "registered_qnode" in described:
        found = keras.saving.get_registered_object(described["registered_qnode"])
        if not isinstance(found, qml.QNode):
            raise ValueError(_not_registered(described["registered_qnode"]))
        return found
    func = keras.saving.get_registered_object(described["registered_function"])
    if func is None:
        raise ValueError(_not_registered(described["registered_function"]))
    return qml.QNode(
        func,
        rebuild_device(described["device"]),
        diff_method=described["diff_method"],
        shots=described["shots"],
    )


def _not_registered(name: str) -> str:
    return (
        f"the saved layer's circuit {name!r} is not registered in this process; import the "
        "module that defines it (decorated with @keras.saving.register_keras_serializable()) "
        "before load_model, or pass it in custom_objects"
    )
