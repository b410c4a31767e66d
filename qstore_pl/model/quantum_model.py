"""``QuantumModel``: a quantum classifier trained from a :class:`TrainingConfig`, priced
before it trains.

The mid-level API for users who want a trained model without writing one. The work
is done by the parts the rest of the package provides: the framework layers
(``QuantumLayer`` for torch and Keras, a QNode with optax for JAX) on the model's
device, usually ``qstore.router``, whose routing, prices and spending ledger the
quote and the per-epoch costs come from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pennylane as qml
from tqdm.auto import tqdm

from qstore_pl.model import checkpoint
from qstore_pl.model.config import TrainingConfig, is_config_path
from qstore_pl.model.estimate import EVAL_CHUNK, RunEstimator, batch_sizes, gradient_kwargs
from qstore_pl.model.gradient import quote_run
from qstore_pl.model.history import History
from qstore_pl.model.quote import Quote, QuoteOverBudget
from qstore_pl.model.result_cache import CheckpointResultCache
from qstore_pl.model.trainer import Trainer, TrainerSpec, cross_entropy, make_trainer, softmax
from qstore_pl.router.purpose import purpose

#: Config fields a checkpoint may differ in and still be resumed.
_RESUMABLE_CHANGES = ("epochs", "budget", "checkpoint_dir", "backend")


class QuantumModel:
    """A classifier: the configured circuit's expectation values, then a linear layer.

    Parameters
    ----------
    config : TrainingConfig
        The circuit, the training settings and where it runs.

    Attributes
    ----------
    history : History
        One record per epoch trained (kept across ``fit`` calls and checkpoints).

    **Example**

    >>> cfg = TrainingConfig(n_qubits=4, depth=2, epochs=3, framework="torch")
    >>> model = QuantumModel(cfg)
    >>> print(model.quote(x_train, y_train))   # circuits, shots, USD; nothing runs
    >>> model.fit(x_train, y_train, validation_data=(x_test, y_test))
    >>> model.evaluate(x_test, y_test)
    {'loss': ..., 'accuracy': ...}
    """

    def __init__(self, config: TrainingConfig):
        if not isinstance(config, TrainingConfig):
            raise TypeError(
                f"QuantumModel takes a TrainingConfig, got {type(config).__name__}; "
                "e.g. QuantumModel(TrainingConfig(n_qubits=4, depth=2))"
            )
        self.config = config
        self.circuit = config.circuit()
        self.history = History()
        self._device = None
        self._result_cache: CheckpointResultCache | None = None
        # _use_gradient sets the trainer and its gradient method together
        self._trainer: Trainer | None = None
        self._gradient: str | None = None
        self._n_features: int | None = None
        self._n_classes: int | None = None
        self._epochs_done = 0
        # SPSA's directions; re-seeded per epoch so that a resumed run draws the same
        self._sampler = np.random.default_rng(config.seed)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"QuantumModel({c.framework}, {c.n_qubits} qubits, depth {c.depth}, "
            f"{self._epochs_done} epoch(s) trained)"
        )

    # ---------------------------------------------------------------- device
    @property
    def device(self):
        """The PennyLane device the circuits run on (built on first use)."""
        if self._device is None:
            self._device, self._result_cache = _training_device(self.config)
        return self._device

    # ----------------------------------------------------------------- quote
    def quote(self, X, y, validation_data: tuple | None = None) -> Quote:
        """Count and price the training run ``fit`` would do; nothing is submitted.

        Parameters
        ----------
        X, y : array_like
            Training features ``(n, n_features)`` and integer labels ``0 .. k-1``.
        validation_data : tuple, optional
            ``(X_val, y_val)``, evaluated once per epoch.

        Returns
        -------
        Quote
            Per epoch and in total: circuits, shots, USD by backend
            (``.total_usd``), the gradient method and why, estimated seconds.
        """
        x, _ = self._check_data(X, y, fitting=True)
        x_val = None if validation_data is None else self._validation(validation_data)[0]
        return self._quote(x, x_val, self.config.epochs)

    def _quote(self, x: np.ndarray, x_val: np.ndarray | None, epochs: int) -> Quote:
        cfg = self.config
        # a jitted JAX step hands its forward and gradient circuits over in one batch
        joint = cfg.framework == "jax"
        estimator = RunEstimator(self.circuit, self.device, cfg.shots, joint_gradient=joint)
        return quote_run(cfg.gradient, cfg.budget, estimator, x, cfg.batch_size, x_val, epochs)

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        X,
        y,
        validation_data: tuple | None = None,
        *,
        progress: bool = True,
        on_epoch_end: Callable[[int, dict], Any] | None = None,
    ) -> History:
        """Train for ``config.epochs`` epochs (resuming from ``checkpoint_dir``).

        Parameters
        ----------
        X, y : array_like
            Training features and integer labels.
        validation_data : tuple, optional
            ``(X_val, y_val)``: loss and accuracy after every epoch.
        progress : bool
            Show a progress bar per epoch.
        on_epoch_end : callable, optional
            ``on_epoch_end(epoch, record)`` after each epoch (and its checkpoint).

        Returns
        -------
        History
            ``self.history``, with one record per epoch.

        Raises
        ------
        BudgetExceeded
            Before anything runs, when the quote is over ``config.budget``.
        """
        cfg = self.config
        x, labels = self._check_data(X, y, fitting=True)
        val = None if validation_data is None else self._validation(validation_data)
        saved = self._read_checkpoint()
        if saved is not None:
            self._restore(saved)
        to_run = cfg.epochs - self._epochs_done if saved is not None else cfg.epochs
        if to_run <= 0:
            return self.history
        quote = self._quote(x, None if val is None else val[0], to_run)
        if cfg.budget is not None and quote.total_usd > cfg.budget:
            raise QuoteOverBudget(quote, cfg.budget)
        trainer = self._use_gradient(quote.gradient)
        if saved is not None:
            trainer.load_state(saved.arrays)
        last = self._epochs_done + to_run
        cache = self._result_cache
        with cache.session() if cache is not None else contextlib.nullcontext():
            for _ in range(to_run):
                record = self._epoch(trainer, x, labels, val, last, progress)
                self.history.epochs.append(record)
                self._epochs_done += 1
                if cfg.checkpoint_dir is not None:
                    self.save(Path(cfg.checkpoint_dir) / checkpoint.CHECKPOINT_FILE)
                if on_epoch_end is not None:
                    on_epoch_end(self._epochs_done, record)
        return self.history

    async def train(self, train_data: tuple, validation_data: tuple | None = None, **kwargs):
        """``fit`` as a coroutine (run in a worker thread): ``await model.train((X, y))``."""
        x, y = train_data
        return await asyncio.to_thread(self.fit, x, y, validation_data, **kwargs)

    def _epoch(
        self,
        trainer: Trainer,
        x: np.ndarray,
        labels: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        last: int,
        progress: bool,
    ) -> dict[str, Any]:
        cfg, epoch = self.config, self._epochs_done
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x))
        self._sampler.bit_generator.state = np.random.default_rng(
            [cfg.seed, epoch, 1]
        ).bit_generator.state
        sizes = batch_sizes(len(x), cfg.batch_size)
        loss_sum, correct, start = 0.0, 0, time.perf_counter()
        bar = tqdm(total=len(sizes), desc=f"epoch {epoch + 1}/{last}", disable=not progress)
        with qml.Tracker(self.device) as tracker, bar:
            done = 0
            for size in sizes:
                batch = order[done : done + size]
                done += size
                loss, hits = trainer.step(x[batch], labels[batch])
                loss_sum += loss * size
                correct += hits
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / done:.4f}", accuracy=f"{correct / done:.3f}")
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": loss_sum / len(x),
                "accuracy": correct / len(x),
            }
            if val is not None:
                x_val, y_val = val
                scores = self._score(x_val, y_val, "validation")
                record.update({f"val_{k}": v for k, v in scores.items()})
        record["seconds"] = time.perf_counter() - start
        record["usd"] = float(tracker.totals.get("cost", 0.0))
        record["circuits"] = _circuits(tracker.totals)
        return record

    # ------------------------------------------------------------ inference
    def evaluate(self, X, y) -> dict[str, float]:
        """Loss and accuracy on ``(X, y)``: ``{"loss": ..., "accuracy": ...}``."""
        x, labels = self._check_data(X, y)
        return self._score(x, labels, "validation")

    def predict(self, X) -> np.ndarray:
        """Predicted class labels of ``X``."""
        return self.predict_proba(X).argmax(axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of ``X``, shape ``(n, n_classes)``."""
        x, _ = self._check_data(X)
        with purpose("validation"):
            return softmax(self._logits(x))

    def _score(self, x, labels, purpose_name: str) -> dict[str, float]:
        with purpose(purpose_name):
            logits = self._logits(x)
        accuracy = float((logits.argmax(axis=1) == labels).mean())
        return {"loss": cross_entropy(logits, labels), "accuracy": accuracy}

    def _logits(self, x: np.ndarray) -> np.ndarray:
        trainer = self._trainer
        if trainer is None:
            raise RuntimeError("the model has not been trained: call fit first (or load one)")
        chunks = [trainer.logits(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
        return np.concatenate(chunks).astype(np.float64)

    # ------------------------------------------------------------ save/load
    def save(self, path: str | os.PathLike) -> None:
        """Write the model (config, weights, optimiser state, history) to one file.

        API keys written into a router config are left out; the loaded model reads
        them from the environment.
        """
        trainer, gradient = self._trainer, self._gradient
        if trainer is None or gradient is None:
            raise RuntimeError("nothing to save: call fit first")
        n_features, n_classes = self._data_shape()
        checkpoint.write(
            path,
            checkpoint.Snapshot(
                config=self.config.to_dict(),
                n_features=n_features,
                n_classes=n_classes,
                gradient=gradient,
                epochs_done=self._epochs_done,
                history=self.history.epochs,
                arrays=trainer.state(),
            ),
        )

    @classmethod
    def load(cls, path: str | os.PathLike, **changes: Any) -> QuantumModel:
        """A model saved with :meth:`save`, ready to predict or train on.

        Parameters
        ----------
        path : str or PathLike
            The saved file.
        **changes
            Config fields to change, e.g. ``backend=...`` to run it elsewhere.
        """
        saved = checkpoint.read(path)
        model = cls(TrainingConfig.from_dict(saved.config).replace(**changes))
        model._restore(saved)
        model._use_gradient(saved.gradient).load_state(saved.arrays)
        return model

    def _restore(self, saved: checkpoint.Snapshot) -> None:
        self._n_features, self._n_classes = saved.n_features, saved.n_classes
        self._epochs_done = saved.epochs_done
        self.history = History(list(saved.history))

    def _read_checkpoint(self) -> checkpoint.Snapshot | None:
        if self.config.checkpoint_dir is None:
            return None
        path = Path(self.config.checkpoint_dir) / checkpoint.CHECKPOINT_FILE
        if not path.exists():
            return None
        saved = checkpoint.read(path)
        ours = self.config.to_dict()
        differ = sorted(
            k for k in ours if k not in _RESUMABLE_CHANGES and saved.config.get(k) != ours[k]
        )
        if differ or (saved.n_features, saved.n_classes) != (self._n_features, self._n_classes):
            what = differ or ["the data's width or classes"]
            raise ValueError(
                f"the checkpoint in {self.config.checkpoint_dir!r} belongs to another run "
                f"({', '.join(what)} differ); use a new checkpoint_dir or delete {path}"
            )
        return saved

    # --------------------------------------------------------------- parts
    def _use_gradient(self, gradient: str) -> Trainer:
        """The trainer for ``gradient``, built unless it is the current one (a new one
        keeps the weights of the one built before)."""
        if self._trainer is not None and gradient == self._gradient:
            return self._trainer
        cfg = self.config
        n_features, n_classes = self._data_shape()
        spec = TrainerSpec(
            circuit=self.circuit,
            device=self.device,
            gradient=gradient,
            gradient_kwargs=gradient_kwargs(gradient, self._sampler),
            shots=cfg.shots,
            n_features=n_features,
            n_classes=n_classes,
            learning_rate=cfg.learning_rate,
            seed=cfg.seed,
        )
        trainer = make_trainer(cfg.framework, spec)
        if self._trainer is not None:
            trainer.load_state(self._trainer.state())
        self._trainer, self._gradient = trainer, gradient
        return trainer

    def _data_shape(self) -> tuple[int, int]:
        """``(n_features, n_classes)``: set from the data by ``fit`` (``_check_data``)
        or from the file by ``load`` (``_restore``), before any trainer is built."""
        if self._n_features is None or self._n_classes is None:
            raise RuntimeError("the model has seen no data: call fit first (or load one)")
        return self._n_features, self._n_classes

    def _validation(self, validation_data) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        return self._check_data(*validation_data)

    def _check_data(self, X, y=None, fitting: bool = False):
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(
                f"X must be a non-empty 2-D array (samples, features), got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("X holds NaN or infinite values; clean or impute them first")
        width = self.circuit.max_features
        if x.shape[1] > width:
            raise ValueError(
                f"{x.shape[1]} features do not fit {self.config.encoding} encoding on "
                f"{self.config.n_qubits} qubits (at most {width}); reduce them (e.g. "
                "qstore_pl.datasets.pca_pipeline) or raise n_qubits"
            )
        if self._n_features is not None and x.shape[1] != self._n_features:
            raise ValueError(
                f"X has {x.shape[1]} features but the model was trained on {self._n_features}"
            )
        if y is None:
            return x, None
        labels = np.asarray(y)
        if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"y must be integer class labels, one per row of X ({len(x)}), got shape "
                f"{labels.shape} and dtype {labels.dtype}"
            )
        if labels.min() < 0:
            raise ValueError("class labels must be 0 .. k-1; got a negative label")
        if fitting and self._n_classes is None:
            n_classes = int(labels.max()) + 1
            if n_classes < 2:
                raise ValueError("y has a single class; a classifier needs at least two")
            self._n_features, self._n_classes = x.shape[1], n_classes
        if self._n_classes is not None and labels.max() >= self._n_classes:
            raise ValueError(
                f"label {int(labels.max())} is beyond the model's {self._n_classes} classes"
            )
        return x, labels.astype(np.int64)


def _training_device(config: TrainingConfig):
    """The device of ``config.backend`` (with the config's seed where it takes one),
    and the result cache of its checkpoints when the run pays for circuits."""
    backend: str | Mapping[str, Any] | None = config.backend  # None: the router's defaults
    wires = config.n_qubits
    if isinstance(backend, str) and not is_config_path(backend):
        if backend != "qstore.router":
            return qml.device(backend, wires=wires), None
        backend = None
    device = qml.device("qstore.router", wires=wires, router_config=backend, seed=config.seed)
    paid = any(spec.metered and not spec.pricing.is_free for spec in device.backends)
    if config.checkpoint_dir is None or not paid:
        return device, None
    cache = CheckpointResultCache(config.checkpoint_dir)
    device = qml.device(
        "qstore.router", wires=wires, router_config=backend, seed=config.seed, callbacks=[cache]
    )
    return device, cache


def _circuits(totals: Mapping[str, Any]) -> int:
    """Circuit executions a tracker counted (the router counts them per backend)."""
    per_backend = [v for k, v in totals.items() if k.startswith("executions:")]
    return int(sum(per_backend)) if per_backend else int(totals.get("executions", 0))
