"""The mid-level API: TrainingConfig, QuantumModel's quote, fit, evaluate, predict,
save/load and resume, on the local router and on a priced (emulated) IonQ backend."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from ionq_support import API_KEY, config, emulator_server, ionq

import qstore_pl
from qstore_pl import BudgetExceeded, QuantumModel, TrainingConfig
from qstore_pl.datasets import load_digits_pca
from qstore_pl.model import TrainingConfigError
from qstore_pl.router.money.ledger import Ledger

emulator = pytest.fixture(emulator_server, name="emulator")

#: Every IonQ job costs max(0.5, shots x (1e-4 N1q + 1e-3 N2q)) USD.
PRICE = {"model": "per_gate_shot", "cost_1q": 1e-4, "cost_2q": 1e-3, "minimum": 0.5}


def tiny_data(n=10, features=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, np.pi, (n, features))
    return x, (x[:, 0] > np.pi / 2).astype(np.int64)


def priced(tmp_path):
    return config(tmp_path, ionq("ionq_sim", "simulator", pricing=PRICE))


def resumable_priced(tmp_path, **fields):
    """A priced run of 4 samples with checkpoints."""
    return TrainingConfig(
        n_qubits=2,
        depth=1,
        shots=20,
        backend=priced(tmp_path),
        checkpoint_dir=str(tmp_path / "ckpt"),
        **fields,
    )


# ------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "change, field",
    [
        ({"n_qubits": 0}, "n_qubits"),
        ({"depth": 1.5}, "depth"),
        ({"batch_size": True}, "batch_size"),
        ({"epochs": -1}, "epochs"),
        ({"framework": "tensorflow"}, "framework"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"encoding": "basis"}, "encoding"),
        ({"ansatz": "qaoa"}, "ansatz"),
        ({"backend": 3}, "backend"),
        ({"backend": "missing.yaml"}, "backend config file"),
        ({"shots": 0}, "shots"),
        ({"budget": -1.0}, "budget"),
        ({"gradient": "finite-diff"}, "gradient"),
        ({"gradient": "adjoint", "shots": 100}, "shots=None"),
        ({"checkpoint_dir": 5}, "checkpoint_dir"),
        ({"seed": -2}, "seed"),
    ],
)
def test_every_bad_config_value_is_named(change, field):
    with pytest.raises(TrainingConfigError, match=field):
        TrainingConfig(**change)


def test_config_round_trips_without_secrets():
    backend = {"backends": [{"name": "q", "type": "ionq", "options": {"api_key": API_KEY}}]}
    cfg = TrainingConfig(backend=backend, budget=3)
    assert cfg.budget == 3.0 and TrainingConfig.from_dict(cfg.to_dict()).budget == 3.0
    assert API_KEY not in str(cfg.to_dict())
    assert cfg.to_dict(keep_secrets=True)["backend"] == backend
    with pytest.raises(TrainingConfigError, match="unknown TrainingConfig field"):
        TrainingConfig.from_dict({"qubits": 3})


def test_bad_data_is_refused_before_anything_runs():
    model = QuantumModel(TrainingConfig(n_qubits=2, depth=1))
    x, y = tiny_data()
    with pytest.raises(ValueError, match="3 features do not fit angle encoding on 2 qubits"):
        model.quote(np.ones((4, 3)), y[:4])
    with pytest.raises(ValueError, match="integer class labels"):
        model.quote(x, y.astype(float))
    with pytest.raises(ValueError, match="NaN"):
        model.quote(np.full((4, 2), np.nan), y[:4])
    with pytest.raises(RuntimeError, match="call fit first"):
        model.predict(x)


# -------------------------------------------------------------- acceptance
@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_digits_3_vs_6_reach_90_percent_and_the_quote_counts_what_ran(framework):
    """Both frameworks run a step as one forward batch and one adjoint VJP (JAX through
    ``circuit_function``, not one Jacobian per sample), as the quote counts them."""
    x_train, x_test, y_train, y_test = load_digits_pca(n_components=4)
    cfg = TrainingConfig(
        n_qubits=4, depth=2, batch_size=16, epochs=2, learning_rate=0.1, framework=framework
    )
    model = QuantumModel(cfg)
    quote = model.quote(x_train, y_train, validation_data=(x_test, y_test))
    assert quote.gradient == "adjoint" and "exact simulation" in quote.gradient_reason
    assert quote.total_usd == 0.0 and quote.trainable == 4 * 2 * 2
    steps = -(-len(x_train) // 16)
    assert quote.steps_per_epoch == steps
    assert quote.circuits == 2 * (len(x_train) + len(x_test))  # forward + validation
    assert quote.backward_passes == 2 * len(x_train)
    history = model.fit(x_train, y_train, validation_data=(x_test, y_test), progress=False)
    assert history["epoch"] == [1, 2] and history["loss"][1] < history["loss"][0]
    assert history["usd"] == [0.0, 0.0] and all(s > 0 for s in history["seconds"])
    # a forward pass then an adjoint VJP per step, each counted by the router
    report = model.device.routing_report()
    ran = sum(t.circuits for t in report.totals.values())
    assert ran == quote.circuits + quote.backward_passes == sum(history["circuits"])
    # every batch on the compiled path (a one-sample batch may go where one circuit
    # runs fastest: lightning, as tapes)
    assert {run.path for run in report.recent if run.circuits > 1} == {"compiled"}
    scores = model.evaluate(x_test, y_test)
    assert scores["accuracy"] >= 0.9
    assert scores["accuracy"] == pytest.approx(np.mean(model.predict(x_test) == y_test))
    assert history["val_accuracy"][-1] == pytest.approx(scores["accuracy"])


@pytest.mark.parametrize("framework", ["torch", "keras", "jax"])
def test_every_framework_fits_evaluates_predicts_saves_and_loads(framework, tmp_path):
    x, y = tiny_data(12)
    cfg = TrainingConfig(
        n_qubits=2, depth=1, batch_size=4, epochs=2, framework=framework, learning_rate=0.2
    )
    model = QuantumModel(cfg)
    history = model.fit(x, y, validation_data=(x, y), progress=False)
    assert len(history) == 2 and set(history.history) >= {"loss", "accuracy", "val_loss", "usd"}
    scores = model.evaluate(x, y)
    assert scores["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)
    probabilities = model.predict_proba(x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert model.predict(x).tolist() == probabilities.argmax(axis=1).tolist()
    model.save(tmp_path / "model.npz")
    loaded = QuantumModel.load(tmp_path / "model.npz")
    assert loaded.config == cfg and loaded.history.epochs == history.epochs
    np.testing.assert_allclose(loaded.predict_proba(x), probabilities, rtol=1e-5)
    # the loaded model trains on from the saved optimiser state, as the original does
    model.fit(x, y, progress=False)
    loaded.fit(x, y, progress=False)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-4)


def test_async_train_is_fit():
    x, y = tiny_data(8)
    cfg = TrainingConfig(n_qubits=2, depth=1, batch_size=4, epochs=1)
    model, twin = QuantumModel(cfg), QuantumModel(cfg)
    history = asyncio.run(model.train((x, y), (x, y), progress=False))
    twin.fit(x, y, validation_data=(x, y), progress=False)
    assert history["loss"] == pytest.approx(twin.history["loss"])
    np.testing.assert_allclose(model.predict_proba(x), twin.predict_proba(x))


# ----------------------------------------------------------------- resume
class Interrupt(Exception):
    pass


def interrupt_after(epoch):
    def hook(done, record):
        if done == epoch:
            raise Interrupt

    return hook


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    x, y = tiny_data(12)
    cfg = TrainingConfig(n_qubits=2, depth=2, batch_size=4, epochs=3, learning_rate=0.2)
    whole = QuantumModel(cfg)
    whole.fit(x, y, progress=False)
    resumable = cfg.replace(checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(Interrupt):
        QuantumModel(resumable).fit(x, y, progress=False, on_epoch_end=interrupt_after(1))
    resumed = QuantumModel(resumable)
    history = resumed.fit(x, y, progress=False)
    assert history["epoch"] == [1, 2, 3]
    assert history["loss"] == pytest.approx(whole.history["loss"], rel=1e-9)
    state, expected = resumed._trainer.state(), whole._trainer.state()
    assert state.keys() == expected.keys()
    for key in state:
        np.testing.assert_allclose(state[key], expected[key], rtol=1e-9, atol=1e-12)
    # a finished run resumes to nothing
    assert len(QuantumModel(resumable).fit(x, y, progress=False)) == 3
    with pytest.raises(ValueError, match="depth differ"):
        QuantumModel(resumable.replace(depth=1)).fit(x, y, progress=False)


# --------------------------------------------------------- priced backends
@pytest.mark.parametrize("framework", ["torch", "keras", "jax"])
def test_the_quote_is_what_a_priced_fit_submits_and_pays(framework, emulator, tmp_path):
    x, y = tiny_data(6)
    cfg = TrainingConfig(
        n_qubits=2,
        depth=1,
        batch_size=4,
        epochs=2,
        backend=priced(tmp_path),
        shots=100,
        framework=framework,
    )
    model = QuantumModel(cfg)
    quote = model.quote(x, y, validation_data=(x[:3], y[:3]))
    assert not emulator.jobs  # quoting submits nothing
    trainable = 2 * 1 * 2
    assert quote.gradient == "parameter-shift" and "no budget is set" in quote.gradient_reason
    assert quote.trainable == trainable
    # per epoch: forward 6, parameter shift 2 x 4 x 6, validation 3 circuits
    assert quote.circuits == 2 * (6 + 2 * trainable * 6 + 3)
    assert quote.total_shots == quote.circuits * 100
    assert quote.alternatives["spsa"] < quote.total_usd
    model.fit(x, y, validation_data=(x[:3], y[:3]), progress=False)
    jobs = sum(line.jobs for line in quote.lines) * 2
    assert len(emulator.jobs) == jobs
    assert sum(model.history["circuits"]) == quote.circuits
    assert sum(model.history["usd"]) == pytest.approx(quote.total_usd)
    report = model.device.cost_report()
    assert report.total == pytest.approx(quote.total_usd)
    assert report.by_backend == {"ionq_sim": pytest.approx(quote.usd_by_backend["ionq_sim"])}
    assert report.shots == {"ionq_sim": quote.total_shots}


def test_auto_picks_spsa_when_parameter_shift_is_over_budget(emulator, tmp_path):
    x, y = tiny_data(6)
    base = TrainingConfig(n_qubits=2, depth=1, batch_size=6, epochs=1, shots=50)
    shift = QuantumModel(base.replace(backend=priced(tmp_path))).quote(x, y)
    budget = (shift.total_usd + shift.alternatives["spsa"]) / 2
    model = QuantumModel(base.replace(backend=priced(tmp_path), budget=budget))
    quote = model.quote(x, y)
    assert quote.gradient == "spsa" and f"over the budget of {budget:.2f} USD" in (
        quote.gradient_reason
    )
    assert quote.circuits == 6 + 2 * 6  # forward + two perturbed circuits per sample
    assert quote.total_usd <= budget
    model.fit(x, y, progress=False)
    assert model.device.cost_report().total == pytest.approx(quote.total_usd)
    assert len(emulator.jobs) == 2


def test_a_quote_over_budget_is_refused_and_submits_nothing(emulator, tmp_path):
    x, y = tiny_data(6)
    cfg = TrainingConfig(
        n_qubits=2, depth=1, epochs=3, backend=priced(tmp_path), shots=100, budget=0.75
    )
    model = QuantumModel(cfg)
    with pytest.raises(BudgetExceeded) as info:
        model.fit(x, y, progress=False)
    quote = info.value.quote
    message = str(info.value)
    assert f"quoted at {quote.total_usd:.2f} USD" in message and "budget of 0.75 USD" in message
    assert "Nothing was submitted" in message and "raise budget" in message
    assert info.value.kind == "training" and quote.total_usd > 0.75
    assert not emulator.jobs
    assert Ledger(tmp_path / "ledger.sqlite").report().total == 0.0
    assert API_KEY not in message


def test_a_resumed_priced_run_pays_each_epoch_once(emulator, tmp_path):
    x, y = tiny_data(4)
    cfg = resumable_priced(tmp_path, batch_size=4, epochs=2)
    quote = QuantumModel(cfg).quote(x, y)
    with pytest.raises(Interrupt):
        QuantumModel(cfg).fit(x, y, progress=False, on_epoch_end=interrupt_after(1))
    assert len(emulator.jobs) == 2  # epoch 1: forward and gradient
    resumed = QuantumModel(cfg)
    resumed.fit(x, y, progress=False)
    assert len(emulator.jobs) == 4
    assert Ledger(tmp_path / "ledger.sqlite").report().total == pytest.approx(quote.total_usd)
    assert resumed.history["usd"] == pytest.approx([quote.usd_per_epoch] * 2)


def test_exports():
    assert qstore_pl.QuantumModel is QuantumModel and qstore_pl.TrainingConfig is TrainingConfig
    assert "QuantumModel" in qstore_pl.__all__ and "TrainingConfig" in qstore_pl.__all__


def test_a_run_interrupted_mid_epoch_takes_what_it_paid_for_from_the_result_cache(
    emulator, tmp_path, monkeypatch
):
    from qstore_pl.model.torch_trainer import TorchTrainer

    x, y = tiny_data(4)
    cfg = resumable_priced(tmp_path, batch_size=2, epochs=1)
    quote = QuantumModel(cfg).quote(x, y)
    step, calls = TorchTrainer.step, []

    def crash_at_the_second_step(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt  # as a crash would, after step 1 was paid for
        return step(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(TorchTrainer, "step", crash_at_the_second_step)
        with pytest.raises(Interrupt):
            QuantumModel(cfg).fit(x, y, progress=False)
    assert len(emulator.jobs) == 2  # step 1: forward and gradient
    resumed = QuantumModel(cfg)
    resumed.fit(x, y, progress=False)
    assert len(emulator.jobs) == 4  # step 1 came from the cache: only step 2 ran
    report = Ledger(tmp_path / "ledger.sqlite").report()
    assert report.total == pytest.approx(quote.total_usd)
    assert report.saved == pytest.approx(quote.total_usd / 2)  # step 1's two jobs
    assert resumed.history["usd"] == [pytest.approx(quote.total_usd / 2)]


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_with_shots_on_free_simulators_auto_takes_the_parameter_shift_rule(framework):
    """Both frameworks shift the weights' angles alone, batch by batch on the compiled
    path (JAX through ``circuit_function``), and run what the quote counts."""
    x, y = tiny_data(5)
    cfg = TrainingConfig(
        n_qubits=2, depth=2, batch_size=3, epochs=1, shots=200, framework=framework
    )
    model = QuantumModel(cfg)
    quote = model.quote(x, y)
    assert quote.gradient == "parameter-shift" and "charges nothing" in quote.gradient_reason
    trainable = 2 * 2 * 2  # RY and RZ per qubit and layer
    assert quote.trainable == trainable
    assert quote.circuits == 5 * (1 + 2 * trainable) and quote.total_usd == 0.0
    model.fit(x, y, progress=False)
    report = model.device.routing_report()
    ran = sum(t.circuits for t in report.totals.values())
    assert ran == quote.circuits == model.history["circuits"][0]
    shifted = [
        (run.path, run.derivative_method) for run in report.recent if run.task.value == "vjp"
    ]
    assert ("compiled", "parameter-shift") in shifted


def test_a_saved_model_keeps_no_api_key_and_loads_with_the_environments(emulator, tmp_path):
    x, y = tiny_data(4)
    backend = config(tmp_path, ionq("ionq_sim", "simulator", options={"api_key": API_KEY}))
    model = QuantumModel(TrainingConfig(n_qubits=2, depth=1, epochs=1, shots=20, backend=backend))
    model.fit(x, y, progress=False)
    model.save(tmp_path / "model.npz")
    assert API_KEY.encode() not in (tmp_path / "model.npz").read_bytes()
    loaded = QuantumModel.load(tmp_path / "model.npz")
    assert "api_key" not in str(loaded.config.backend)
    assert loaded.predict(x).shape == (4,)  # the key comes from IONQ_API_KEY


@pytest.mark.parametrize("kind", ["device name", "config file"])
def test_other_backends(kind, tmp_path):
    backend = "default.qubit"
    if kind == "config file":
        backend = tmp_path / "router.yaml"
        backend.write_text("backends: [default.qubit]\n")
    x, y = tiny_data(4)
    model = QuantumModel(TrainingConfig(n_qubits=2, depth=1, epochs=1, backend=backend))
    quote = model.quote(x, y)
    assert quote.usd_by_backend == {"default.qubit": 0.0} and quote.gradient == "adjoint"
    model.fit(x, y, progress=False)
    # the router counts its adjoint backward sweeps as executions, default.qubit does not
    sweeps = quote.backward_passes if kind == "config file" else 0
    assert model.history["circuits"] == [quote.circuits + sweeps]


def test_the_quantum_layers_take_shots_and_keras_saves_them():
    from qstore_pl.keras import QuantumLayer as KerasQuantumLayer
    from qstore_pl.torch import QuantumLayer as TorchQuantumLayer

    layer = KerasQuantumLayer(2, 1, device="default.qubit", diff_method="parameter-shift", shots=50)
    assert layer.get_config()["shots"] == 50
    assert KerasQuantumLayer.from_config(layer.get_config()).qnode.shots.total_shots == 50
    unset = KerasQuantumLayer(2, 1, device="default.qubit")
    assert KerasQuantumLayer.from_config(unset.get_config()).qnode.shots.total_shots is None
    torch_layer = TorchQuantumLayer(2, 1, device="default.qubit", shots=30)
    assert torch_layer.qnode.shots.total_shots == 30
