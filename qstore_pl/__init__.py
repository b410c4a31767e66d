"""qstore_pl: PennyLane plugins that run hybrid quantum-classical models on the right
backend at the right price.

The devices are registered with PennyLane's plugin entry points::

    import pennylane as qml

    dev = qml.device("qstore.router", wires=8)   # cost-aware router
    dev = qml.device("qstore.qsim", wires=20)    # qsim driven directly

Importing the package loads neither PennyLane nor a machine-learning framework (the
command line starts in a fraction of a second); the exceptions load on first use.
Nothing here patches PennyLane: configuration goes through the devices' keyword
arguments (see the README, "Configuration").
"""

# first: OpenMP runtimes read their wait policy when loaded (see qstore_pl.support.threads)
from qstore_pl.support import threads

threads.prefer_passive_waiting()

from qstore_pl import _moved  # noqa: E402
from qstore_pl.router.purpose import purpose  # noqa: E402

_moved.install()  # old module paths keep working for one release, with a warning

__version__ = "0.1.0"

#: Exported from :mod:`qstore_pl.exceptions`, which imports PennyLane (loaded on use).
_EXCEPTIONS = (
    "BackendExecutionError",
    "BudgetExceeded",
    "ConfigError",
    "InvalidParameterError",
    "ParameterTypeError",
    "QstoreError",
    "UnknownBackendError",
    "UnsupportedCircuitError",
)


#: Exported from :mod:`qstore_pl.model` (the mid-level API; loaded on use).
_MODEL = ("QuantumModel", "TrainingConfig")


def __getattr__(name: str):
    if name in _EXCEPTIONS:
        from qstore_pl import exceptions

        return getattr(exceptions, name)
    if name in _MODEL:
        from qstore_pl import model

        return getattr(model, name)
    if name == "trajectories":  # imports PennyLane: loaded on use
        from qstore_pl.transforms.trajectories import trajectories

        return trajectories
    raise AttributeError(f"module 'qstore_pl' has no attribute {name!r}")


__all__ = [*_EXCEPTIONS, *_MODEL, "__version__", "purpose", "trajectories"]
