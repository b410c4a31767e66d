"""The model as a Keras model, trained with Keras's own training step."""

from __future__ import annotations

import keras
import numpy as np

from qstore_pl.keras import QuantumLayer
from qstore_pl.model.trainer import TrainerSpec, layer_options


class KerasTrainer:
    """``keras.Model``: ``QuantumLayer`` then ``Dense``, compiled with Adam; a step is
    ``train_on_batch``."""

    def __init__(self, spec: TrainerSpec):
        layer = QuantumLayer(
            **layer_options(spec),
            input_gradients=False,  # the data: no circuits for its gradient
            dtype="float64",
            weight_specs={
                "weights": {
                    "initializer": keras.initializers.RandomUniform(0.0, 2 * np.pi, seed=spec.seed)
                }
            },
        )
        head = keras.layers.Dense(
            spec.n_classes,
            kernel_initializer=keras.initializers.GlorotUniform(seed=spec.seed),
            dtype="float64",
        )
        inputs = keras.Input((spec.n_features,), dtype="float64")
        self.model = keras.Model(inputs, head(layer(inputs)))
        self.model.compile(
            optimizer=keras.optimizers.Adam(spec.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        self.model.optimizer.build(self.model.trainable_variables)

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self.model.reset_metrics()  # the batch's own numbers, not a running mean
        logs = self.model.train_on_batch(x, y, return_dict=True)
        return float(logs["loss"]), round(float(logs["accuracy"]) * len(y))

    def logits(self, x: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.model(x, training=False))

    def state(self) -> dict[str, np.ndarray]:
        out = {f"model/{i}": np.asarray(w) for i, w in enumerate(self.model.get_weights())}
        for i, variable in enumerate(self.model.optimizer.variables):
            out[f"optimizer/{i}"] = keras.ops.convert_to_numpy(variable)
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        n_weights = len(self.model.get_weights())
        self.model.set_weights([state[f"model/{i}"] for i in range(n_weights)])
        for i, variable in enumerate(self.model.optimizer.variables):
            variable.assign(state[f"optimizer/{i}"])
