"""Hardware-efficient ansatz: layers of single-qubit rotations and an entangler."""

from __future__ import annotations

from collections.abc import Sequence

import pennylane as qml
from pennylane import math
from pennylane.operation import Operation, Operator
from pennylane.typing import TensorLike
from pennylane.wires import WiresLike

#: Rotation gates the ansatz may use, by name.
ROTATIONS = {"RX": qml.RX, "RY": qml.RY, "RZ": qml.RZ}
#: Entangling patterns: which CNOTs follow each rotation layer.
ENTANGLEMENTS = ("linear", "ring", "full")


def entangling_pairs(num_wires: int, entanglement: str) -> list[tuple[int, int]]:
    """CNOT (control, target) index pairs of one entangling layer.

    ``"linear"`` chains neighbours, ``"ring"`` closes the chain (no duplicate pair on
    two wires), ``"full"`` connects every pair.
    """
    if entanglement not in ENTANGLEMENTS:
        raise ValueError(f"entanglement must be one of {ENTANGLEMENTS}, got {entanglement!r}")
    if num_wires < 2:
        return []
    if entanglement == "full":
        return [(i, j) for i in range(num_wires) for j in range(i + 1, num_wires)]
    pairs = [(i, i + 1) for i in range(num_wires - 1)]
    if entanglement == "ring" and num_wires > 2:
        pairs.append((num_wires - 1, 0))
    return pairs


class HardwareEfficientAnsatz(Operation):
    r"""Layers of single-qubit rotations on every wire followed by CNOT entanglers.

    Layer :math:`l` applies, on each wire :math:`i`, the rotations in ``rotations`` with
    angles ``weights[l, i, :]``, then the CNOTs of ``entanglement``. This is the
    circuit of the DESIGN.md W1 workload with the defaults ``("RY", "RZ")`` and
    ``"ring"``.

    Parameters
    ----------
    weights : tensor_like
        Shape ``(n_layers, n_wires, len(rotations))``; a leading batch dimension
        broadcasts.
    wires : Sequence
        Wires to act on.
    rotations : Sequence[str]
        Rotation gate names from ``("RX", "RY", "RZ")``.
    entanglement : {"linear", "ring", "full"}
        Entangling pattern.

    Examples
    --------
    >>> shape = HardwareEfficientAnsatz.shape(n_layers=2, n_wires=3)
    >>> shape
    (2, 3, 2)
    """

    grad_method = None

    def __init__(
        self,
        weights: TensorLike,
        wires: WiresLike,
        rotations: Sequence[str] = ("RY", "RZ"),
        entanglement: str = "ring",
        id: str | None = None,
    ):
        rotations = tuple(rotations)
        unknown = [r for r in rotations if r not in ROTATIONS]
        if unknown or not rotations:
            raise ValueError(f"rotations must be names from {sorted(ROTATIONS)}, got {rotations}")
        entangling_pairs(2, entanglement)  # validates the name
        shape = math.shape(weights)
        wires = qml.wires.Wires(wires)
        expected = (len(wires), len(rotations))
        if len(shape) not in (3, 4) or tuple(shape[-2:]) != expected:
            raise ValueError(
                f"weights must have shape (n_layers, {expected[0]}, {expected[1]}) "
                f"(or a leading batch dimension), got {tuple(shape)}"
            )
        self._hyperparameters = {"rotations": rotations, "entanglement": entanglement}
        super().__init__(weights, wires=wires, id=id)

    num_params = 1
    ndim_params = (3,)

    @staticmethod
    def shape(
        n_layers: int, n_wires: int, rotations: Sequence[str] = ("RY", "RZ")
    ) -> tuple[int, int, int]:
        """Shape of the ``weights`` argument."""
        return n_layers, n_wires, len(tuple(rotations))

    @staticmethod
    def compute_decomposition(
        weights: TensorLike, wires: WiresLike, rotations: Sequence[str], entanglement: str
    ) -> list[Operator]:
        """Rotations and CNOTs, layer by layer."""
        gates = [ROTATIONS[name] for name in rotations]
        pairs = entangling_pairs(len(wires), entanglement)
        batched = math.ndim(weights) == 4
        ops = []
        for layer in range(math.shape(weights)[-3]):
            for i, wire in enumerate(wires):
                for k, gate in enumerate(gates):
                    angle = weights[:, layer, i, k] if batched else weights[layer, i, k]
                    ops.append(gate(angle, wires=wire))
            ops.extend(qml.CNOT(wires=[wires[a], wires[b]]) for a, b in pairs)
        return ops
