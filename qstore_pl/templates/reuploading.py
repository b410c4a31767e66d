"""Data re-uploading: the features are encoded again before every trainable layer."""

from __future__ import annotations

from collections.abc import Sequence

import pennylane as qml
from pennylane import math
from pennylane.operation import Operation, Operator
from pennylane.typing import TensorLike
from pennylane.wires import WiresLike

from qstore_pl.templates._checks import as_tensor, check_finite, check_scalar
from qstore_pl.templates.encodings import AngleEncoding, check_angle_features, parse_rotation
from qstore_pl.templates.hardware_efficient import (
    ROTATIONS,
    HardwareEfficientAnsatz,
    entangling_pairs,
)


class DataReuploading(Operation):
    r"""``L`` layers of [angle-encode the features, trainable rotations, entangler].

    Layer :math:`l` applies :class:`~qstore_pl.templates.AngleEncoding` of ``features``
    (axes ``encoding``, factor ``scaling``), then on each wire :math:`i` the gates in
    ``rotations`` with angles ``weights[l, i, :]``, then the CNOTs of ``entanglement``
    (as :class:`~qstore_pl.templates.HardwareEfficientAnsatz`). Encoding the data
    repeatedly lets the circuit express higher frequencies of the features
    (Pérez-Salinas et al., Quantum 4, 226 (2020); Schuld et al., PRA 103, 032430 (2021)).

    Parameters
    ----------
    features : tensor_like
        Shape ``(n_features,)`` with ``n_features <= len(wires)``, or
        ``(batch, n_features)``.
    weights : tensor_like
        Shape ``(n_layers, len(wires), len(rotations))``, see :meth:`shape`; a leading
        batch dimension broadcasts.
    wires : Sequence
        Wires to act on.
    rotations : Sequence[str]
        Trainable rotation gates per wire, from ``("RX", "RY", "RZ")``.
    entanglement : {"linear", "ring", "full"}
        CNOT pattern after each layer's rotations.
    scaling : float
        Factor on the features before encoding.
    encoding : str or Sequence[str]
        Encoding axes, as ``rotation`` of :class:`AngleEncoding` (default ``"X"``: RX
        encoding does not commute with the default trainable RY).

    Examples
    --------
    >>> DataReuploading.shape(n_layers=3, n_wires=4)
    (3, 4, 2)
    """

    grad_method = None

    def __init__(
        self,
        features: TensorLike,
        weights: TensorLike,
        wires: WiresLike,
        rotations: Sequence[str] = ("RY", "RZ"),
        entanglement: str = "ring",
        scaling: float = 1.0,
        encoding: str = "X",
        id: str | None = None,
    ):
        name = "DataReuploading"
        wires = qml.wires.Wires(wires)
        rotations = tuple(rotations)
        if not rotations or any(r not in ROTATIONS for r in rotations):
            raise ValueError(
                f"{name}: rotations must be names from {sorted(ROTATIONS)}, got {rotations}"
            )
        entangling_pairs(2, entanglement)  # validates the name
        axes = parse_rotation(encoding)
        scaling = check_scalar(name, "scaling", scaling)
        features = check_angle_features(name, features, len(wires))
        weights = as_tensor(weights)
        shape = tuple(math.shape(weights))
        expected = (len(wires), len(rotations))
        if len(shape) not in (3, 4) or shape[-2:] != expected or shape[-3] == 0:
            raise ValueError(
                f"{name}: weights must have shape (n_layers, {expected[0]}, {expected[1]}) "
                f"(or a leading batch dimension), see DataReuploading.shape; got {shape}"
            )
        check_finite(name, "weights", weights)
        f_shape = tuple(math.shape(features))
        if len(f_shape) == 2 and len(shape) == 4 and f_shape[0] != shape[0]:
            raise ValueError(
                f"{name}: features have batch size {f_shape[0]} but weights {shape[0]}: give "
                "both the same leading dimension, or batch only one of them"
            )
        self._hyperparameters = {
            "rotations": rotations,
            "entanglement": entanglement,
            "scaling": scaling,
            "encoding": axes,
        }
        super().__init__(features, weights, wires=wires, id=id)

    num_params = 2
    ndim_params = (1, 3)

    @staticmethod
    def shape(
        n_layers: int, n_wires: int, rotations: Sequence[str] = ("RY", "RZ")
    ) -> tuple[int, int, int]:
        """Shape of the ``weights`` argument."""
        return n_layers, n_wires, len(tuple(rotations))

    @staticmethod
    def compute_decomposition(
        features: TensorLike,
        weights: TensorLike,
        wires: WiresLike,
        rotations: Sequence[str],
        entanglement: str,
        scaling: float,
        encoding: str,
    ) -> list[Operator]:
        """Per layer: the encoding gates, then the rotations and CNOTs of that layer."""
        ops = []
        for layer in range(math.shape(weights)[-3]):
            ops += AngleEncoding.compute_decomposition(features, wires, encoding, scaling)
            ops += HardwareEfficientAnsatz.compute_decomposition(
                weights[..., layer : layer + 1, :, :], wires, rotations, entanglement
            )
        return ops
