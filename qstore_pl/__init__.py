"""qstore_pl: PennyLane plugins that run hybrid quantum-classical models on the right
backend at the right price.

The devices are registered with PennyLane's plugin entry points::

    import pennylane as qml
    import qstore_pl  # lets qml.device("qstore.*", config={...}) take a router config

    dev = qml.device("qstore.router", wires=8)   # cost-aware router
    dev = qml.device("qstore.qsim", wires=20)    # qsim driven directly

Importing the package loads neither PennyLane nor a machine-learning framework (the
command line starts in a fraction of a second); the exceptions load on first use and
``qml.device`` is adapted as soon as PennyLane is imported.
"""

# first: OpenMP runtimes read their wait policy when loaded (see qstore_pl.threads)
from qstore_pl import threads

threads.prefer_passive_waiting()

from qstore_pl.after_import import when_imported  # noqa: E402
from qstore_pl.router.purpose import purpose  # noqa: E402

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


def __getattr__(name: str):
    if name in _EXCEPTIONS:
        from qstore_pl import exceptions

        return getattr(exceptions, name)
    if name == "trajectories":  # imports PennyLane: loaded on use
        from qstore_pl.noise_trajectories import trajectories

        return trajectories
    raise AttributeError(f"module 'qstore_pl' has no attribute {name!r}")


def _adapt_qml_device() -> None:
    from qstore_pl import device_config

    device_config.install()


when_imported("pennylane", _adapt_qml_device)

__all__ = [*_EXCEPTIONS, "__version__", "purpose", "trajectories"]
