"""Matrices and diagonals of common gates for a whole column of parameters at once.

PennyLane's ``compute_matrix`` dispatches through autoray on every call; these plain
numpy versions build ``(B, d, d)`` (or ``(B, 2**k)`` diagonals) for ``B`` angles in a
few array operations. Gates missing here fall back to PennyLane.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _rx(t):
    c, s = np.cos(t / 2), -1j * np.sin(t / 2)
    return np.stack([np.stack([c, s], -1), np.stack([s, c], -1)], -2)


def _ry(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2).astype(complex)


def _rz_diag(t):
    e = np.exp(-0.5j * t)
    return np.stack([e, np.conj(e)], -1)


def _phase_diag(t):
    return np.stack([np.ones_like(t, dtype=complex), np.exp(1j * t)], -1)


def _ising_zz_diag(t):
    e = np.exp(-0.5j * t)
    return np.stack([e, np.conj(e), np.conj(e), e], -1)


def _controlled_phase_diag(t):
    one = np.ones_like(t, dtype=complex)
    return np.stack([one, one, one, np.exp(1j * t)], -1)


def _crz_diag(t):
    one = np.ones_like(t, dtype=complex)
    e = np.exp(-0.5j * t)
    return np.stack([one, one, e, np.conj(e)], -1)


def _controlled(single: Callable) -> Callable:
    def build(t):
        m = np.zeros((*np.shape(t), 4, 4), dtype=complex)
        m[..., 0, 0] = m[..., 1, 1] = 1
        m[..., 2:, 2:] = single(t)
        return m

    return build


def _ising_xx(t):
    c, s = np.cos(t / 2), -1j * np.sin(t / 2)
    m = np.zeros((*np.shape(t), 4, 4), dtype=complex)
    for i in range(4):
        m[..., i, i] = c
        m[..., i, 3 - i] = s
    return m


def _ising_yy(t):
    c, s = np.cos(t / 2), 1j * np.sin(t / 2)
    m = np.zeros((*np.shape(t), 4, 4), dtype=complex)
    for i in range(4):
        m[..., i, i] = c
    m[..., 0, 3] = m[..., 3, 0] = s
    m[..., 1, 2] = m[..., 2, 1] = -s
    return m


#: Dense gates: name -> builder of ``(..., d, d)`` from an angle array.
DENSE = {
    "RX": _rx,
    "RY": _ry,
    "CRX": _controlled(_rx),
    "CRY": _controlled(_ry),
    "IsingXX": _ising_xx,
    "IsingYY": _ising_yy,
}

#: Diagonal gates: name -> builder of ``(..., 2**k)`` from an angle array.
DIAGONAL = {
    "RZ": _rz_diag,
    "PhaseShift": _phase_diag,
    "IsingZZ": _ising_zz_diag,
    "ControlledPhaseShift": _controlled_phase_diag,
    "CRZ": _crz_diag,
}
