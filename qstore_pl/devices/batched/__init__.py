"""The ``qstore.batched`` device: a batch of same-structure circuits as one simulation."""

from qstore_pl.devices.batched.device import BatchedDevice

__all__ = ["BatchedDevice"]
