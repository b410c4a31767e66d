"""qstore_pl: PennyLane plugins that run hybrid quantum-classical models on the right
backend at the right price.

The devices are registered with PennyLane's plugin entry points::

    import pennylane as qml
    import qstore_pl  # lets qml.device("qstore.*", config={...}) take a router config

    dev = qml.device("qstore.router", wires=8)   # cost-aware router
    dev = qml.device("qstore.qsim", wires=20)    # qsim driven directly
"""

from qstore_pl import device_config
from qstore_pl.exceptions import (
    BackendExecutionError,
    BudgetExceeded,
    ConfigError,
    InvalidParameterError,
    ParameterTypeError,
    QstoreError,
    UnknownBackendError,
    UnsupportedCircuitError,
)
from qstore_pl.router.purpose import purpose

__version__ = "0.1.0"

device_config.install()

__all__ = [
    "BackendExecutionError",
    "BudgetExceeded",
    "ConfigError",
    "InvalidParameterError",
    "ParameterTypeError",
    "QstoreError",
    "UnknownBackendError",
    "UnsupportedCircuitError",
    "__version__",
    "purpose",
]
