"""``QuantumLayer`` for torch: a circuit described by size and parts, on TorchLayer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pennylane.devices import Device

from qstore_pl.layers.circuit import LayerCircuit
from qstore_pl.torch.layer import TorchLayer


class QuantumLayer(TorchLayer):
    r"""A trainable quantum ``torch.nn.Module`` in the style of Q-Store's ``QuantumLayer``.

    PennyLane's :class:`~pennylane.qnn.TorchLayer` does the torch integration (batches
    are broadcast into one tape, so ``qstore.router`` runs a batch as one simulation and
    its backward pass as one adjoint VJP).

    Parameters
    ----------
    n_qubits, depth : int
        Circuit width and number of ansatz layers.
    encoding, ansatz, entanglement, measurement
        See :class:`qstore_pl.layers.circuit.LayerCircuit`.
    device : str or Device
        ``"qstore.router"`` (default) or any PennyLane device name or instance.
    diff_method : str
        The QNode's differentiation method.
    init_method : callable or Mapping, optional
        As TorchLayer's (default: uniform in :math:`[0, 2\pi)`).
    shots : int, optional
        Shots per circuit (``None``: exact expectation values).
    gradient_kwargs : dict, optional
        Options of the gradient method (e.g. SPSA's ``h`` and ``sampler_rng``).
    compiled : bool
        Take the compiled path on ``qstore.router`` (see :class:`TorchLayer`).
    **circuit_options
        ``rotations``, ``encoding_axis``, ``scaling``.

    Examples
    --------
    >>> layer = QuantumLayer(n_qubits=4, depth=2)
    >>> model = torch.nn.Sequential(layer, torch.nn.Linear(4, 2))
    """

    def __init__(
        self,
        n_qubits: int,
        depth: int,
        encoding: str = "angle",
        ansatz: str = "hardware_efficient",
        entanglement: str = "linear",
        measurement: str | Sequence[str] = "z",
        device: str | Device = "qstore.router",
        diff_method: str = "best",
        init_method: Callable | Mapping | None = None,
        shots: int | None = None,
        gradient_kwargs: dict | None = None,
        compiled: bool = True,
        **circuit_options: Any,
    ):
        circuit = LayerCircuit(
            n_qubits,
            depth,
            encoding=encoding,
            ansatz=ansatz,
            entanglement=entanglement,
            measurement=measurement,
            **circuit_options,
        )
        qnode = circuit.qnode(
            device,
            interface="torch",
            diff_method=diff_method,
            shots=shots,
            gradient_kwargs=gradient_kwargs,
        )
        super().__init__(qnode, circuit.weight_shapes(), init_method=init_method, compiled=compiled)
        self.circuit = circuit

    @property
    def output_dim(self) -> int:
        """Outputs per sample."""
        return self.circuit.output_dim
