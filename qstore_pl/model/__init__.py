"""The mid-level API: describe a quantum classifier in a :class:`TrainingConfig`, price
the run with :meth:`QuantumModel.quote`, train it with :meth:`QuantumModel.fit`."""

from qstore_pl.model.config import TrainingConfig, TrainingConfigError
from qstore_pl.model.history import History
from qstore_pl.model.quantum_model import QuantumModel
from qstore_pl.model.quote import Quote, QuoteLine, QuoteOverBudget

__all__ = [
    "History",
    "QuantumModel",
    "Quote",
    "QuoteLine",
    "QuoteOverBudget",
    "TrainingConfig",
    "TrainingConfigError",
]
