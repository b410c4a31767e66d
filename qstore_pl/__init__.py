"""qstore_pl: PennyLane plugins that run hybrid quantum-classical models on the right
backend at the right price.

The devices are registered with PennyLane's plugin entry points::

    import pennylane as qml
    import qstore_pl  # lets qml.device("qstore.*", config={...}) take a router config

    dev = qml.device("qstore.router", wires=8)   # cost-aware router
    dev = qml.device("qstore.qsim", wires=20)    # qsim driven directly
"""

# first: OpenMP runtimes read their wait policy when loaded (see qstore_pl.threads)
from qstore_pl import threads

threads.prefer_passive_waiting()

from qstore_pl import device_config  # noqa: E402
from qstore_pl.exceptions import (  # noqa: E402
    BackendExecutionError,
    BudgetExceeded,
    ConfigError,
    InvalidParameterError,
    QstoreError,
    UnknownBackendError,
    UnsupportedCircuitError,
)
from qstore_pl.router.purpose import purpose  # noqa: E402

__version__ = "0.1.0"

device_config.install()

__all__ = [
    "BackendExecutionError",
    "BudgetExceeded",
    "ConfigError",
    "InvalidParameterError",
    "QstoreError",
    "UnknownBackendError",
    "UnsupportedCircuitError",
    "__version__",
    "purpose",
]
