"""The router's door for circuit-input layers (PQC, ControlledPQC) that bind arrays.

Such a layer runs its batch as a compiled program on the batched engine
(:mod:`qstore_pl.devices.batched.circuit_inputs`), with no tape per sample. The
router still decides: the batch is described by one representative circuit (data
circuit + model) broadcast over the batch, since one engine call runs it, and routed
as that tape would be (same policy, precision, spending conditions and decision
cache, :func:`~qstore_pl.router.execution.compiled.engine_decision`). Only a
``qstore.batched`` backend can take the path; for any other choice
:func:`choose_engine` says why, and the layer runs its tapes through the router as
before. Each run is reported as the router's own runs are
(:func:`~qstore_pl.router.execution.compiled.compiled_run`, noting :data:`PATH_NOTE`):
the routing report, the tracker, and callbacks, which see every sample's circuit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pennylane.tape import QuantumScript

from qstore_pl.devices.grouping import TapeGroup, broadcast_size, structure_key
from qstore_pl.router.execution.compiled import EngineChoice, engine_decision

if TYPE_CHECKING:
    from qstore_pl.router.device import RouterDevice

#: What the routing report says about runs on this path.
PATH_NOTE = "circuit-input program, no tapes"


def choose_engine(
    router: RouterDevice, representative: QuantumScript, batch: int, training: bool
) -> EngineChoice | str:
    """Route ``batch`` copies of ``representative``; the choice, or why the
    compiled path cannot take it.

    Parameters
    ----------
    router : RouterDevice
        The router whose policy and backends decide.
    representative : QuantumScript
        One sample's full circuit (data + model), its symbol-driven angles trainable,
        broadcast over the batch (or not, then routed as ``batch`` copies).
    batch : int
        Samples in the batch.
    training : bool
        Whether a VJP will follow (the router routes the forward pass for it).
    """
    key = structure_key(representative)
    if broadcast_size(representative) == batch:  # one engine call: one broadcast tape
        group = TapeGroup([0], [representative], key)
    else:
        group = TapeGroup(list(range(batch)), [representative] * batch, key)
    return engine_decision(router, group, training)
