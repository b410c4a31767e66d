"""qstore_pl.keras.NoisyPQC on the active Keras backend: exact values and gradients equal
default.mixed's; trajectories agree within their statistical error."""

from __future__ import annotations

import keras
import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

from keras_backends.backend_grad import layer_gradients
from qstore_pl.circuits import ParametrizedCircuit, encode_circuits
from qstore_pl.keras import NoisyPQC

OBSERVABLES = [qml.Z(1), qml.X(0) @ qml.Z(1)]


def noisy_model(w):
    qml.RY(w[0], 0)
    qml.CNOT([0, 1])
    qml.DepolarizingChannel(0.2, 0)
    qml.RX(w[1], 1)
    qml.BitFlip(0.1, 1)


MODEL = ParametrizedCircuit.from_function(noisy_model, w=2)


def data_circuits(n: int):
    angles = np.random.default_rng(0).uniform(0, 3, n).astype(np.float32).astype(np.float64)
    return [qml.tape.QuantumScript([qml.RX(a, 0), qml.RY(a / 2, 1)]) for a in angles]


def reference(circuits, w):
    """Outputs on default.mixed, and the gradient of ``sum(cot * outputs)`` in ``w``."""
    dev = qml.device("default.mixed", wires=2)

    def outputs(w):
        rows = []
        for circuit in circuits:
            tape = qml.tape.QuantumScript(
                circuit.operations + MODEL.bind(w=w).operations,
                [qml.expval(o) for o in OBSERVABLES],
            )
            rows.append(qml.math.stack(qml.execute([tape], dev, diff_method="backprop")[0]))
        return qml.math.stack(rows)

    return outputs


def _layer(**kwargs):
    init = keras.initializers.RandomUniform(0, 3, seed=1)
    return NoisyPQC(MODEL, OBSERVABLES, initializer=init, **kwargs)


def test_exact_values_and_gradients_equal_default_mixed():
    circuits = data_circuits(5)
    tensor = encode_circuits(circuits, max_ops=2).astype("float32")
    layer = _layer()
    (w,) = [keras.ops.convert_to_numpy(v).astype(np.float64) for v in layer.trainable_variables]
    outputs = reference(circuits, w)
    y = keras.ops.convert_to_numpy(layer(tensor))
    np.testing.assert_allclose(y, outputs(w), atol=2e-6)
    cot = np.random.default_rng(2).normal(size=(5, 2)).astype("float32")
    _, (gw,) = layer_gradients(layer, tensor, cot)
    want = qml.grad(lambda w: qml.math.sum(cot * outputs(w)))(pnp.array(w, requires_grad=True))
    np.testing.assert_allclose(gw, want, atol=1e-5)
    noiseless = keras.ops.convert_to_numpy(pqc_without_noise(w)(tensor))
    assert np.abs(y - noiseless).max() > 0.05  # the channels act


def pqc_without_noise(w):
    """The same model without its channels, with weights ``w``."""
    from qstore_pl.keras import PQC

    def model(v):
        qml.RY(v[0], 0)
        qml.CNOT([0, 1])
        qml.RX(v[1], 1)

    layer = PQC(ParametrizedCircuit.from_function(model, v=2), OBSERVABLES)
    layer.trainable_variables[0].assign(w.astype("float32"))
    return layer


# the trajectories are drawn on the host, behind the bridge the exact test covers
@pytest.mark.keras_backend_agnostic
@pytest.mark.parametrize("sample_based", [False, True])
def test_trajectories_agree_within_their_statistical_error(sample_based):
    repetitions = 4000
    circuits = data_circuits(3)
    tensor = encode_circuits(circuits, max_ops=2).astype("float32")
    layer = _layer(repetitions=repetitions, sample_based=sample_based, seed=3)
    (w,) = [keras.ops.convert_to_numpy(v).astype(np.float64) for v in layer.trainable_variables]
    y = keras.ops.convert_to_numpy(layer(tensor)).astype(np.float64)
    exact = np.asarray(reference(circuits, w)(w))
    # values in [-1, 1]: standard error at most 1/sqrt(R); 5 sigma
    np.testing.assert_allclose(y, exact, atol=5 / np.sqrt(repetitions))
    assert np.abs(y - exact).max() > 0  # an estimate, not the exact value


@pytest.mark.keras_backend_agnostic
def test_trajectory_gradients_agree_within_their_statistical_error():
    repetitions = 4000
    circuits = data_circuits(3)
    tensor = encode_circuits(circuits, max_ops=2).astype("float32")
    layer = _layer(repetitions=repetitions, seed=4)
    (w,) = [keras.ops.convert_to_numpy(v).astype(np.float64) for v in layer.trainable_variables]
    cot = np.ones((3, 2), dtype="float32")
    _, (gw,) = layer_gradients(layer, tensor, cot)
    outputs = reference(circuits, w)
    want = qml.grad(lambda w: qml.math.sum(cot * outputs(w)))(pnp.array(w, requires_grad=True))
    # 6 outputs, each derivative's error <= 1/sqrt(R) (values of unit norm): 5 sigma
    np.testing.assert_allclose(gw, want, atol=6 * 5 / np.sqrt(repetitions))


@pytest.mark.keras_backend_agnostic
def test_noisy_pqc_survives_save_and_load(tmp_path):
    layer = _layer(repetitions=10, seed=1)
    inputs = keras.Input((2, encode_circuits(data_circuits(1), max_ops=2).shape[-1]))
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "noisy.keras"
    model.save(path)
    from qstore_pl.keras import load_model

    again = load_model(path)
    rebuilt = again.layers[-1]
    assert (rebuilt.repetitions, rebuilt.sample_based, rebuilt.seed) == (10, False, 1)


@pytest.mark.keras_backend_agnostic
def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="give repetitions"):
        NoisyPQC(MODEL, OBSERVABLES, sample_based=True)
    with pytest.raises(ValueError, match="positive integer"):
        NoisyPQC(MODEL, OBSERVABLES, repetitions=0)
