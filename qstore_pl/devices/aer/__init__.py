"""The ``qstore.aer`` PennyLane device: noisy circuits on Qiskit Aer, driven directly.

- :mod:`~qstore_pl.devices.aer.translate`: tapes (gates and channels) -> Qiskit circuits.
- :mod:`~qstore_pl.devices.aer.device`: the device (density matrix or trajectories).
"""

from qstore_pl.devices.aer.device import AerDevice

__all__ = ["AerDevice"]
