"""Circuit templates that decompose to gates every qstore_pl backend runs."""

from qstore_pl.templates.hardware_efficient import HardwareEfficientAnsatz, entangling_pairs

__all__ = ["HardwareEfficientAnsatz", "entangling_pairs"]
