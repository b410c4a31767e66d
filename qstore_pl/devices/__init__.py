"""Leaf PennyLane devices (``qstore.batched``, ``qstore.qsim``, ``qstore.ionq``) and the
small helpers they share. Nothing here imports :mod:`qstore_pl.router` or any layer
above it: the router builds on these devices, not the other way round."""
