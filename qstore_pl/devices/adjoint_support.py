"""Whether a device can differentiate a circuit with the adjoint method, asked once.

QNodes ask ``supports_derivatives`` on every call; the answer depends on the circuit's
structure (and what the caller puts in the key), so it is found once by running the
device's adjoint preprocessing on the circuit and then remembered.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

from pennylane.devices import Device, ExecutionConfig
from pennylane.exceptions import DeviceError
from pennylane.operation import DecompositionUndefinedError
from pennylane.tape import QuantumScript

from qstore_pl.support.bounded_cache import BoundedCache

#: Structures whose answer a device keeps (see :func:`adjoint_support`).
KEPT = 256


def adjoint_support(
    device: Device,
    known: BoundedCache[Hashable, bool],
    key: Hashable,
    execution_config: ExecutionConfig,
    circuit: QuantumScript,
) -> bool:
    """``known[key]``, computed by preprocessing ``circuit`` for the adjoint method
    (``known``: the device's ``BoundedCache(KEPT)``)."""
    if key not in known:
        config = device.setup_execution_config(
            replace(execution_config, gradient_method="adjoint"), circuit
        )
        try:
            device.preprocess_transforms(config)((circuit,))
            known[key] = True
        except (DeviceError, DecompositionUndefinedError, AttributeError):
            known[key] = False
    return known[key]
