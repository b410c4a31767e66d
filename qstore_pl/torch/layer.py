"""``TorchLayer``: PennyLane's TorchLayer with its weight shapes checked against the
circuit, on the compiled path where its QNode runs on ``qstore.router``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pennylane as qml
import torch

from qstore_pl.interfaces.torch_bridge import torch_op
from qstore_pl.layers.compiled import compiled_host_function, return_kind
from qstore_pl.layers.qnode_spec import INPUT_ARG, host_function, trial_tape


class TorchLayer(qml.qnn.TorchLayer):
    """:class:`pennylane.qnn.TorchLayer` that checks ``weight_shapes`` on the first call
    and takes the compiled path on ``qstore.router``.

    PennyLane's layer builds its circuit only when called, so a ``weight_shapes``
    entry that does not match what the circuit indexes surfaces as
    ``IndexError: tuple index out of range`` from inside a template. This layer builds
    the circuit once per input width with placeholders of the declared shapes (no
    execution) and raises a ``ValueError`` that names the shapes and the fix.

    On ``qstore.router`` a batch skips the QNode: the circuit is recorded once per
    structure and each call binds the inputs and weights into the routed backend's
    compiled program (:mod:`qstore_pl.layers.compiled`); outputs have TorchLayer's
    shapes and dtype. Unbatched inputs, and circuits the compiled path cannot express
    (it warns once, saying why), run through the QNode.

    Parameters
    ----------
    qnode, weight_shapes, init_method
        As :class:`pennylane.qnn.TorchLayer`'s.
    compiled : bool
        Use the compiled path where it applies (default); ``False`` always calls the QNode.
    """

    _checked_width: int | None = None

    def __init__(
        self,
        qnode: qml.QNode,
        weight_shapes: Mapping,
        init_method: Callable | Mapping | None = None,
        compiled: bool = True,
    ):
        super().__init__(qnode, weight_shapes, init_method=init_method)
        names = list(self.qnode_weights)
        host = None
        if compiled and self.input_arg == INPUT_ARG:
            fallback = host_function(qnode, names, input_gradients=True)
            found = compiled_host_function(qnode, names, fallback)
            host = found if found is not fallback else None
        self._compiled_host = host
        self._compiled_op = torch_op(host) if host is not None else None
        self._returns: dict[int, tuple[str, list[tuple[int, ...]]]] = {}

    @property
    def compiled(self) -> bool:
        """Whether batches take the compiled path (where the circuit allows)."""
        return self._compiled_host is not None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Check ``weight_shapes`` on the first call per input width, then run the layer."""
        width = int(inputs.shape[-1])
        if width != self._checked_width and self.input_arg == INPUT_ARG:
            shapes = {name: tuple(w.shape) for name, w in self.qnode_weights.items()}
            trial_tape(self.qnode, shapes, width)
            self._checked_width = width
        if self._compiled_op is None or inputs.ndim < 2:
            return super().forward(inputs)
        return self._compiled_forward(inputs)

    def _compiled_forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch_dims = inputs.shape[:-1]
        x = torch.reshape(inputs, (-1, inputs.shape[-1]))
        weights = [w.to(x) for w in self.qnode_weights.values()]
        assert self._compiled_op is not None, "checked by forward"
        out = self._compiled_op(x, *weights)  # (batch, outputs)
        returns, shapes = self._return_kind(x, weights)
        if returns == "single":
            return torch.reshape(out, (*batch_dims, *shapes[0]))
        if returns == "list":
            return torch.reshape(out, (*batch_dims, out.shape[-1]))
        sizes = [math.prod(s) for s in shapes]
        parts = torch.split(out, sizes, dim=1)  # TorchLayer stacks a returned tuple
        return torch.stack([torch.reshape(p, (*batch_dims, p.shape[-1])) for p in parts])

    def _return_kind(self, x: torch.Tensor, weights) -> tuple[str, list[tuple[int, ...]]]:
        """How the circuit returns its measurements (TorchLayer shapes outputs by it)."""
        width = int(x.shape[-1])
        if width not in self._returns:
            kwargs = dict(zip(self.qnode_weights, (w.detach().cpu().numpy() for w in weights)))
            self._returns[width] = return_kind(self.qnode, x[:1].detach().cpu().numpy(), kwargs)
        return self._returns[width]
