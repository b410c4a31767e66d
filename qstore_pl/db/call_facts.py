"""What the delivery needs from a recorded call's circuit, as plain data.

A call whose backend kept its states is encoded from those amplitudes; from the
circuit it needs only the structure hash and the gate parameters stored with each
state. They are taken on the training thread when the call is spooled (0.6 ms at
8 qubits and 136 gates, against 1.3 ms to pickle the circuit) and spooled as a JSON
text and a float64 blob, so the delivery reads them without PennyLane: a delivery
process that imported it to unpickle circuits spent seconds starting up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Longest parameter list stored with a state (Pinecone metadata is limited to 40 KB).
MAX_PARAMETERS_IN_TEXT = 1000


@dataclass(frozen=True)
class ParameterRun:
    """Consecutive gate parameters of one kind: ``shared`` by every broadcast
    element (``values`` flat) or one row per element (``values`` ``(batch, k)``)."""

    shared: bool
    values: np.ndarray


@dataclass(frozen=True)
class CallFacts:
    """A call's circuit as the delivery needs it beside the backend's amplitudes.

    Attributes
    ----------
    circuit_hash : str
        :func:`~qstore_pl.db.circuits.structure_hash` of the circuit.
    batch : int
        Broadcast elements (1 for an unbatched circuit).
    runs : tuple[ParameterRun, ...]
        The gate parameters in order (:func:`~qstore_pl.db.circuits.parameter_runs`).
    """

    circuit_hash: str
    batch: int
    runs: tuple[ParameterRun, ...]

    def parameter_texts(self) -> list[str]:
        """The parameters of each broadcast element as a JSON list (see
        :func:`parameter_texts`)."""
        return parameter_texts(self.runs, self.batch)

    def to_row(self) -> tuple[str, bytes]:
        """The spool's ``facts`` text and ``parameters`` blob."""
        layout = [[int(r.shared), r.values.size] for r in self.runs]
        text = json.dumps({"hash": self.circuit_hash, "batch": self.batch, "runs": layout})
        blob = b"".join(
            np.ascontiguousarray(r.values, dtype=np.float64).tobytes() for r in self.runs
        )
        return text, blob

    @classmethod
    def from_row(cls, text: str, blob: bytes) -> CallFacts:
        """What :meth:`to_row` wrote."""
        facts = json.loads(text)
        batch = int(facts["batch"])
        values = np.frombuffer(blob, dtype=np.float64)
        runs, start = [], 0
        for shared, size in facts["runs"]:
            chunk = values[start : start + size]
            runs.append(ParameterRun(bool(shared), chunk if shared else chunk.reshape(batch, -1)))
            start += size
        return cls(facts["hash"], batch, tuple(runs))


def parameter_texts(runs: Sequence[ParameterRun], batch: int) -> list[str]:
    """Each broadcast element's parameters as a JSON list, in gate order; none (``[]``
    for every element) past :data:`MAX_PARAMETERS_IN_TEXT` per element.

    Shared runs (the weights) are formatted once, and each run in one ``json.dumps``:
    formatting is most of the cost of recording a batch.
    """
    count = sum(r.values.size if r.shared else r.values.shape[1] for r in runs)
    if count > MAX_PARAMETERS_IN_TEXT:
        return []
    pieces = [
        json.dumps(r.values.tolist())[1:-1]
        if r.shared
        else [json.dumps(row)[1:-1] for row in r.values.tolist()]
        for r in runs
    ]
    return [
        "[" + ", ".join(p if isinstance(p, str) else p[b] for p in pieces) + "]"
        for b in range(batch)
    ]
