"""The model as a JAX function, trained with optax.

The circuit is a :func:`~qstore_pl.jax.circuit_function` of the QNode where the
quote's count holds for it: exact simulation (the adjoint method, ``shots=None``), and
the parameter-shift rule on a router without priced backends. Under ``jax.jit`` a step
is then one forward run and one VJP for the whole batch, on the router's compiled
path (with shots: the weights' shifted circuits, as the quote counts them). PennyLane's
JAX interface under ``jit`` spells out one Jacobian per sample instead (an 8-qubit
digits model: 99 s to compile its first epoch, then 8 s per epoch, against torch's
0.03 s). SPSA, and the parameter-shift rule on priced backends, run through the QNode
itself, so that the jobs submitted and paid for are those the quote prices
(PennyLane's gradient transforms, forward pass and gradient in one job).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

from qstore_pl.jax import circuit_function
from qstore_pl.model.trainer import TrainerSpec


class JaxTrainer:
    """A QNode on the JAX interface and a linear head, with ``optax.adam``."""

    def __init__(self, spec: TrainerSpec):
        c = spec.circuit
        options = {} if spec.shots is None else {"shots": spec.shots}
        qnode = qml.QNode(
            c.qfunc(),
            spec.device,
            interface="jax",
            diff_method=spec.gradient,
            gradient_kwargs=spec.gradient_kwargs,
            **options,
        )
        self._circuit = circuit_function(qnode) if _table_counts_as_quoted(spec) else qnode
        k_weights, k_head = jax.random.split(jax.random.PRNGKey(spec.seed))
        shape = c.weight_shapes()["weights"]
        self.params = {
            "weights": jax.random.uniform(k_weights, shape, maxval=2 * np.pi),
            "kernel": jax.nn.initializers.glorot_uniform()(k_head, (c.output_dim, spec.n_classes)),
            "bias": jnp.zeros(spec.n_classes),
        }
        self._optimizer = optax.adam(spec.learning_rate)
        self.opt_state = self._optimizer.init(self.params)
        # compiled once per batch shape: the circuit runs through PennyLane's callback
        self._update = jax.jit(self._update_fn)
        self._predict = jax.jit(self._forward)

    def _forward(self, params, x):
        outputs = self._circuit(x, params["weights"])
        expvals = jnp.stack(outputs, axis=-1) if isinstance(outputs, (list, tuple)) else outputs
        return jnp.reshape(expvals, (x.shape[0], -1)) @ params["kernel"] + params["bias"]

    def _loss(self, params, x, y):
        logits = self._forward(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

    def _update_fn(self, params, opt_state, x, y):
        (loss, logits), grads = jax.value_and_grad(self._loss, has_aux=True)(params, x, y)
        updates, opt_state = self._optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, logits

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self.params, self.opt_state, loss, logits = self._update(
            self.params, self.opt_state, jnp.asarray(x), jnp.asarray(y)
        )
        return float(loss), int((np.asarray(logits).argmax(axis=1) == y).sum())

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(self.params, jnp.asarray(x)))

    def state(self) -> dict[str, np.ndarray]:
        leaves = jax.tree_util.tree_leaves((self.params, self.opt_state))
        return {f"tree/{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        treedef = jax.tree_util.tree_structure((self.params, self.opt_state))
        leaves = [jnp.asarray(state[f"tree/{i}"]) for i in range(treedef.num_leaves)]
        self.params, self.opt_state = jax.tree_util.tree_unflatten(treedef, leaves)


def _table_counts_as_quoted(spec: TrainerSpec) -> bool:
    """Whether ``circuit_function`` runs what the quote counts for ``spec``."""
    if spec.shots is None:
        return spec.gradient == "adjoint"
    free = not any(getattr(b, "metered", False) for b in getattr(spec.device, "backends", ()))
    return spec.gradient == "parameter-shift" and not spec.gradient_kwargs and free
