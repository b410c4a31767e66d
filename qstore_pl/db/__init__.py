"""The quantum-state database: device callbacks that record states and cache results.

The router calls callbacks through :mod:`qstore_pl.callbacks`; stores and recorders
live here.
"""
