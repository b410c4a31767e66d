"""The ``qstore.qsim`` PennyLane device: qsim driven directly, without Cirq.

- :mod:`~qstore_pl.devices.qsim.translate`: tapes -> qsim circuits (gate plans).
- :mod:`~qstore_pl.devices.qsim.simulator`: runs qsim circuits.
- :mod:`~qstore_pl.devices.qsim.measurements`: analytic measurements of the results.
- :mod:`~qstore_pl.devices.qsim.device`: the device; capabilities in ``qsim.toml``.
"""

from qstore_pl.devices.qsim.device import QsimDevice

__all__ = ["QsimDevice"]
