r"""Quantum convolutional neural network (QCNN) as in TensorFlow Quantum's tutorial.

The building blocks follow TFQ's "Quantum Convolutional Neural Network" tutorial
(docs/tutorials/qcnn.ipynb), itself after Cong, Choi and Lukin, Nat. Phys. 15, 1273
(2019):

=========================  =============================================================
TFQ tutorial               here
=========================  =============================================================
``cluster_state_circuit``  :class:`ClusterState`
``one_qubit_unitary``      ``RX, RY, RZ`` (see the angle mapping below)
``two_qubit_unitary``      one convolution unit of :class:`QCNNConvolution` (15 angles)
``quantum_conv_circuit``   :class:`QCNNConvolution`
``two_qubit_pool``         one pooling unit of :class:`QCNNPooling` (6 angles)
``quantum_pool_circuit``   :class:`QCNNPooling`
``create_model_circuit``   :class:`QCNN`
=========================  =============================================================

Angle mapping: TFQ writes gates as Cirq powers. ``cirq.X**t`` equals ``RX(pi*t)`` up to a
global phase, and ``cirq.ZZ**t`` (likewise ``YY``, ``XX``) equals ``IsingZZ(pi*t)`` up to
a global phase, so a TFQ symbol value ``t`` is the angle ``pi*t`` here and every
expectation value agrees. The Ising gates are in IonQ's "qis" gate set and in every
simulator's, so the templates decompose to RX, RY, RZ, IsingXX/YY/ZZ, CNOT and Hadamard.
"""

from __future__ import annotations

from typing import Any

import pennylane as qml
from pennylane import math
from pennylane.operation import Operation, Operator
from pennylane.typing import TensorLike
from pennylane.wires import Wires, WiresLike

from qstore_pl.templates._checks import as_tensor, check_finite

#: Angles of one two-qubit convolution unit (TFQ's ``two_qubit_unitary``).
CONV_PARAMS = 15
#: Angles of one pooling unit (TFQ's ``two_qubit_pool``).
POOL_PARAMS = 6


def _check_weights(template: str, weights, size: int, hint: str):
    weights = as_tensor(weights)
    shape = tuple(math.shape(weights))
    if len(shape) not in (1, 2) or shape[-1] != size:
        raise ValueError(
            f"{template}: weights must have shape ({size},) or (batch, {size}) {hint}; got {shape}"
        )
    check_finite(template, "weights", weights)
    return weights


def _one_qubit_unitary(angles, wire) -> list:
    """TFQ's ``one_qubit_unitary``: X, Y, Z powers, i.e. RX, RY, RZ in that order."""
    return [
        qml.RX(angles[..., 0], wires=wire),
        qml.RY(angles[..., 1], wires=wire),
        qml.RZ(angles[..., 2], wires=wire),
    ]


def convolution_pairs(wires: WiresLike) -> list[tuple]:
    """Wire pairs of one convolution, in TFQ's order: even-odd, then odd-even with wrap.

    For wires ``0..7``: ``(0,1) (2,3) (4,5) (6,7)`` then ``(1,2) (3,4) (5,6) (7,0)``; for
    two wires ``(0,1) (1,0)``.
    """
    wires = list(wires)
    first = list(zip(wires[0::2], wires[1::2]))
    second = list(zip(wires[1::2], [*wires[2::2], wires[0]]))
    return first + second


class ClusterState(Operation):
    r"""Cluster state on a ring: Hadamard on every wire, then CZ on each neighbour pair.

    The same state as TFQ's ``cluster_state_circuit`` (CZ between ``wires[i]`` and
    ``wires[i+1]``, and ``wires[-1]`` with ``wires[0]``). IonQ has no CZ gate, so each CZ
    is written as ``H CNOT H`` on its second wire; Hadamards that would meet their
    inverse are left out (``2n + 2`` gates instead of ``4n``).

    Parameters
    ----------
    wires : Sequence
        At least two wires, in ring order.
    """

    num_params = 0
    grad_method = None

    def __init__(self, wires: WiresLike, id: str | None = None):
        wires = Wires(wires)
        if len(wires) < 2:
            raise ValueError(
                f"ClusterState: a ring needs at least 2 wires, got {len(wires)}: pass more wires"
            )
        super().__init__(wires=wires, id=id)

    @staticmethod
    def compute_decomposition(wires: WiresLike) -> list[Operator]:
        """H, then each ring CZ as ``H CNOT H`` with cancelling Hadamards dropped."""
        ops = []
        # wires still owed their initial Hadamard: for them H (owed) H (from a CZ) = I.
        # Every wire is a target once on the ring, so none is owed at the end.
        owed = set(wires)
        for a, b in zip(wires, [*wires[1:], wires[0]]):
            if a in owed:  # a control must be in the |+> basis first
                ops.append(qml.Hadamard(wires=a))
                owed.discard(a)
            if b in owed:
                owed.discard(b)
            else:
                ops.append(qml.Hadamard(wires=b))
            ops += [qml.CNOT(wires=[a, b]), qml.Hadamard(wires=b)]
        return ops


class QCNNConvolution(Operation):
    r"""One QCNN convolution: the same two-qubit unitary on neighbouring wire pairs.

    Each unit on wires ``(a, b)`` is TFQ's ``two_qubit_unitary`` (Tucci's decomposition):
    ``RX RY RZ`` on ``a`` (``weights[0:3]``) and on ``b`` (``weights[3:6]``), then
    ``IsingZZ(weights[6])``, ``IsingYY(weights[7])``, ``IsingXX(weights[8])``, then
    ``RX RY RZ`` on ``a`` (``weights[9:12]``) and on ``b`` (``weights[12:15]``). All pairs
    share the 15 weights (translation invariance, as in TFQ); the pairs are those of
    :func:`convolution_pairs`. Weight = ``pi`` x TFQ symbol value.

    Parameters
    ----------
    weights : tensor_like
        Shape ``(15,)``, or ``(batch, 15)``.
    wires : Sequence
        At least two wires.
    """

    grad_method = None

    def __init__(self, weights: TensorLike, wires: WiresLike, id: str | None = None):
        wires = Wires(wires)
        if len(wires) < 2:
            raise ValueError(
                f"QCNNConvolution: needs at least 2 wires, got {len(wires)}: pass more wires"
            )
        weights = _check_weights("QCNNConvolution", weights, CONV_PARAMS, "(TFQ's 15 symbols)")
        super().__init__(weights, wires=wires, id=id)

    num_params = 1
    ndim_params = (1,)

    @staticmethod
    def compute_decomposition(weights: TensorLike, wires: WiresLike) -> list[Operator]:
        """The 15-angle unit on every pair of :func:`convolution_pairs`."""
        ops = []
        for a, b in convolution_pairs(wires):
            ops += _one_qubit_unitary(weights[..., 0:3], a)
            ops += _one_qubit_unitary(weights[..., 3:6], b)
            ops += [
                qml.IsingZZ(weights[..., 6], wires=[a, b]),
                qml.IsingYY(weights[..., 7], wires=[a, b]),
                qml.IsingXX(weights[..., 8], wires=[a, b]),
            ]
            ops += _one_qubit_unitary(weights[..., 9:12], a)
            ops += _one_qubit_unitary(weights[..., 12:15], b)
        return ops


class QCNNPooling(Operation):
    r"""QCNN pooling: each source wire is folded into its sink wire.

    Per pair, TFQ's ``two_qubit_pool``: ``RX RY RZ`` on the sink (``weights[0:3]``) and
    on the source (``weights[3:6]``), ``CNOT(source, sink)``, then the inverse of the
    sink's rotations (``RZ(-w2) RY(-w1) RX(-w0)``). All pairs share the 6 weights. After
    pooling only the sinks are used. Weight = ``pi`` x TFQ symbol value.

    Parameters
    ----------
    weights : tensor_like
        Shape ``(6,)``, or ``(batch, 6)``.
    source_wires, sink_wires : Sequence
        Equally many, distinct wires; ``source_wires[i]`` pools into ``sink_wires[i]``.
    """

    grad_method = None

    def __init__(
        self,
        weights: TensorLike,
        source_wires: WiresLike,
        sink_wires: WiresLike,
        id: str | None = None,
    ):
        sources, sinks = Wires(source_wires), Wires(sink_wires)
        if len(sources) != len(sinks) or not sources:
            raise ValueError(
                f"QCNNPooling: needs as many source wires as sink wires (at least one), got "
                f"{len(sources)} sources and {len(sinks)} sinks"
            )
        shared = Wires.shared_wires([sources, sinks])
        if shared:
            raise ValueError(
                f"QCNNPooling: wires {shared.tolist()} are both sources and sinks: a wire "
                "pools into another one, so the two lists must be disjoint"
            )
        weights = _check_weights("QCNNPooling", weights, POOL_PARAMS, "(TFQ's 6 symbols)")
        super().__init__(weights, wires=sources + sinks, id=id)

    num_params = 1
    ndim_params = (1,)

    @property
    def source_wires(self) -> Wires:
        return self.wires[: len(self.wires) // 2]

    @property
    def sink_wires(self) -> Wires:
        return self.wires[len(self.wires) // 2 :]

    @classmethod
    def _unflatten(cls, data, metadata):
        wires = metadata[0]
        half = len(wires) // 2
        (weights,) = data
        return cls(weights, source_wires=wires[:half], sink_wires=wires[half:])

    @staticmethod
    def compute_decomposition(weights: TensorLike, wires: WiresLike) -> list[Operator]:
        """Basis selectors, CNOT source→sink, inverse sink selector, pair by pair."""
        half = len(wires) // 2
        ops = []
        for source, sink in zip(wires[:half], wires[half:]):
            ops += _one_qubit_unitary(weights[..., 0:3], sink)
            ops += _one_qubit_unitary(weights[..., 3:6], source)
            ops.append(qml.CNOT(wires=[source, sink]))
            ops += [
                qml.RZ(-weights[..., 2], wires=sink),
                qml.RY(-weights[..., 1], wires=sink),
                qml.RX(-weights[..., 0], wires=sink),
            ]
        return ops


class QCNN(Operation):
    r"""Convolution and pooling from :math:`2^k` wires down to one readout wire.

    Level :math:`l` (of :math:`k`) convolves the active wires with ``weights[l, :15]``
    (:class:`QCNNConvolution`) and pools their first half into their second half with
    ``weights[l, 15:]`` (:class:`QCNNPooling`); the second half stays active. The
    readout is ``wires[-1]`` (:meth:`readout_wire`); measure ``qml.Z`` there.

    For 8 wires this is TFQ's ``create_model_circuit`` exactly: conv(0..7), pool(0..3 →
    4..7), conv(4..7), pool(4,5 → 6,7), conv(6,7), pool(6 → 7), with
    ``weights.reshape(-1) == pi * [qconv0, ..., qconv62]`` (TFQ's 63 symbols in order:
    15 conv + 6 pool per level). As in TFQ, weights are shared by all pairs within one
    convolution or pooling layer and not across layers.

    Parameters
    ----------
    weights : tensor_like
        Shape ``(k, 21)`` for :math:`2^k` wires (see :meth:`shape`), or
        ``(batch, k, 21)``.
    wires : Sequence
        :math:`2^k` wires, :math:`k \ge 1`.

    Examples
    --------
    >>> QCNN.shape(8)
    (3, 21)
    >>> QCNN.readout_wire(["a", "b", "c", "d"])
    'd'
    """

    grad_method = None

    def __init__(self, weights: TensorLike, wires: WiresLike, id: str | None = None):
        wires = Wires(wires)
        shape = QCNN.shape(len(wires))
        weights = as_tensor(weights)
        got = tuple(math.shape(weights))
        if len(got) not in (2, 3) or got[-2:] != shape:
            raise ValueError(
                f"QCNN: weights for {len(wires)} wires must have shape {shape} "
                f"(or a leading batch dimension), see QCNN.shape; got {got}"
            )
        check_finite("QCNN", "weights", weights)
        super().__init__(weights, wires=wires, id=id)

    num_params = 1
    ndim_params = (2,)

    @staticmethod
    def shape(n_wires: int) -> tuple[int, int]:
        """Shape of ``weights`` for ``n_wires`` (a power of two, at least 2)."""
        n_wires = int(n_wires)
        if n_wires < 2 or n_wires & (n_wires - 1):
            raise ValueError(
                f"QCNN: needs 2**k wires (k >= 1) to halve down to one readout wire, got "
                f"{n_wires}: pad the register to {max(2, 1 << (n_wires - 1).bit_length())} wires"
            )
        return n_wires.bit_length() - 1, CONV_PARAMS + POOL_PARAMS

    @staticmethod
    def readout_wire(wires: WiresLike) -> Any:
        """The wire left after all pooling layers: the last one."""
        return Wires(wires)[-1]

    @staticmethod
    def compute_decomposition(weights: TensorLike, wires: WiresLike) -> list[Operator]:
        """Convolution and pooling gates, level by level."""
        active = Wires(wires)
        ops = []
        for level in range(math.shape(weights)[-2]):
            conv = weights[..., level, :CONV_PARAMS]
            pool = weights[..., level, CONV_PARAMS:]
            half = len(active) // 2
            ops += QCNNConvolution.compute_decomposition(conv, active)
            ops += QCNNPooling.compute_decomposition(pool, active)
            active = active[half:]
        return ops
