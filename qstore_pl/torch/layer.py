"""``TorchLayer``: PennyLane's TorchLayer with its weight shapes checked against the
circuit, so a wrong shape names itself instead of failing deep in a template."""

from __future__ import annotations

import pennylane as qml
import torch

from qstore_pl.layers.qnode_spec import INPUT_ARG, trial_tape


class TorchLayer(qml.qnn.TorchLayer):
    """:class:`pennylane.qnn.TorchLayer` that checks ``weight_shapes`` on the first call.

    PennyLane's layer builds its circuit only when called, so a ``weight_shapes``
    entry that does not match what the circuit indexes surfaces as
    ``IndexError: tuple index out of range`` from inside a template. This layer builds
    the circuit once per input width with placeholders of the declared shapes (no
    execution) and raises a ``ValueError`` that names the shapes and the fix.

    Parameters are those of :class:`pennylane.qnn.TorchLayer`.
    """

    _checked_width: int | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Check ``weight_shapes`` on the first call per input width, then run the layer."""
        width = int(inputs.shape[-1])
        if width != self._checked_width and self.input_arg == INPUT_ARG:
            shapes = {name: tuple(w.shape) for name, w in self.qnode_weights.items()}
            trial_tape(self.qnode, shapes, width)
            self._checked_width = width
        return super().forward(inputs)
