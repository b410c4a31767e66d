"""Batched state-vector kernels in numpy: one array operation per gate for a whole batch.

States are ``(M, 2**n)`` arrays, one row per circuit (``M`` may be a multiple of the
batch ``B`` when several adjoint states share one circuit's gates). A gate whose
parameters the batch shares is one small matrix broadcast over every row; otherwise
each row gets its own. Permutations (CNOT, SWAP, Toffoli, X) are one gather, diagonal
gates (RZ, PhaseShift, CZ, IsingZZ, ...) one multiplication, and runs of one-wire
gates are multiplied into one matrix before they touch the state (:func:`fuse`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qstore_pl.devices.batched import jit_kernels
from qstore_pl.devices.batched.buffers import Buffers
from qstore_pl.devices.batched.program import ArrayGate


def fuse(gates: Sequence[ArrayGate], compose_permutations: bool = True) -> list[ArrayGate]:
    """The same circuit with fewer array operations.

    Consecutive one-wire gates on a wire become one matrix, and (if
    ``compose_permutations``) consecutive permutations one gather.
    """
    out: list[ArrayGate] = []
    pending: dict[int, ArrayGate] = {}

    def flush(wires):
        for w in wires:
            if w in pending:
                out.append(pending.pop(w))

    for gate in gates:
        if len(gate.wires) == 1 and gate.kind != "perm":
            (w,) = gate.wires
            dense = gate.as_dense()
            if w in pending:
                dense = ArrayGate("dense", (w,), np.matmul(dense.value, pending[w].value))
            pending[w] = dense
            continue
        flush(gate.wires if gate.kind != "perm" else list(pending))
        if compose_permutations and gate.kind == "perm" and out and out[-1].kind == "perm":
            out[-1] = ArrayGate("perm", (), np.asarray(out[-1].value)[np.asarray(gate.value)])
        else:
            out.append(gate)
    flush(list(pending))
    return out


def encode(gates: Sequence[ArrayGate], n: int, dtype) -> tuple[np.ndarray, ...]:
    """Flat arrays describing a gate sequence for :func:`jit_kernels.apply_sequence`."""
    kinds, counts, position_offsets, positions, value_offsets, values = [], [], [0], [], [], []
    offset = 0
    for gate in gates:
        if gate.kind == "perm":
            kinds.append(jit_kernels.PERMUTATION)
            counts.append(1)
            positions.append(np.asarray(gate.value, dtype=np.int64))
            value_offsets.append(offset)
        else:
            kinds.append(jit_kernels.DIAGONAL if gate.kind == "diag" else jit_kernels.DENSE)
            positions.append(np.array([n - 1 - w for w in gate.wires], dtype=np.int64))
            dim = 2 ** len(gate.wires)
            block = (
                gate.value.reshape(-1, dim)
                if gate.kind == "diag"
                else gate.value.reshape(-1, dim, dim)
            )
            counts.append(block.shape[0])
            value_offsets.append(offset)
            values.append(block.ravel())
            offset += block.size
        position_offsets.append(position_offsets[-1] + positions[-1].shape[0])
    flat = np.concatenate(values) if values else np.zeros(1, complex)
    real_dtype = np.finfo(np.dtype(dtype)).dtype
    structure = (
        np.array(kinds, dtype=np.int64),
        np.array(counts, dtype=np.int64),
        np.array(position_offsets, dtype=np.int64),
        np.concatenate(positions) if positions else np.zeros(0, np.int64),
        np.array(value_offsets, dtype=np.int64),
    )
    jit_kernels.check_sequence(n, *structure, flat.size)
    return (
        *structure,
        np.ascontiguousarray(flat.real, dtype=real_dtype),
        np.ascontiguousarray(flat.imag, dtype=real_dtype),
    )


def check_width(states: np.ndarray, n: int) -> None:
    """Raise ``ValueError`` unless ``states`` holds C-ordered rows of ``2**n`` amplitudes
    (the compiled kernels index rows by ``n`` and check no bounds)."""
    if states.ndim != 2 or states.shape[1] != 1 << n or not states.flags.c_contiguous:
        raise ValueError(
            f"states of shape {states.shape} are not C-ordered rows of 2**{n} amplitudes"
        )


class StateKernel:
    """Applies array gates to batches of states, in place.

    A gate sequence runs in one compiled call, row by row
    (:func:`~qstore_pl.devices.batched.jit_kernels.apply_sequence`).

    Parameters
    ----------
    dtype : numpy dtype
        ``complex128`` or ``complex64``.

    Attributes
    ----------
    buffers : Buffers
        The large arrays (state batches, work planes) this kernel's calls reuse.
    """

    name = "jit"
    compose_permutations = True
    #: runs encoded sequences compiled once per structure (:mod:`.plan`)
    planned = True

    def __init__(self, dtype=np.complex128):
        self.dtype = np.dtype(dtype)
        self.buffers = Buffers()

    def initial_states(self, batch: int, n: int, initial: np.ndarray | None) -> np.ndarray:
        """``|0...0>`` (or the given state-preparation states) for every circuit."""
        if initial is not None:
            # C order: concatenated broadcast rows can come out Fortran-ordered
            return np.array(initial, dtype=self.dtype, order="C")
        states = np.zeros((batch, 2**n), dtype=self.dtype)
        states[:, 0] = 1
        return states

    def apply(self, states: np.ndarray, gate: ArrayGate, n: int) -> np.ndarray:
        """Apply one array gate to every row (overwrites ``states``)."""
        return self.apply_all(states, [gate], n)

    def apply_all(self, states: np.ndarray, gates: Sequence[ArrayGate], n: int) -> np.ndarray:
        """Apply array gates in order (overwrites ``states``, which must be C-ordered)."""
        if gates:
            check_width(states, n)
            jit_kernels.apply_sequence(states, *encode(gates, n, states.dtype))
        return states
