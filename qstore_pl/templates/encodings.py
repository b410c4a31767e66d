"""Data encodings: angle encoding and amplitude encoding, batched.

Both decompose to RX/RY/RZ and CNOT only, so every qstore_pl backend (IonQ's
"qis" gate set included) runs them without further compilation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pennylane as qml
from pennylane import math
from pennylane.operation import Operation, Operator
from pennylane.typing import TensorLike
from pennylane.wires import WiresLike

from qstore_pl.templates._checks import as_tensor, check_finite, check_scalar, is_complex

#: Rotation gate per axis letter.
AXIS_GATES = {"X": qml.RX, "Y": qml.RY, "Z": qml.RZ}


def parse_rotation(rotation: str | Sequence[str]) -> tuple[str, ...]:
    """Axis letters of an encoding rotation: ``"Y"`` → ``("Y",)``, ``"XY"`` → ``("X", "Y")``.

    Gate names are accepted as well: ``"RX"`` or ``["RX", "RZ"]``.
    """
    if isinstance(rotation, str):
        text = rotation.upper()
        items = [text] if text in ("RX", "RY", "RZ") else list(text)
    else:
        items = [str(r).upper() for r in rotation]
    axes = tuple(r[1:] if len(r) == 2 and r[0] == "R" else r for r in items)
    if not axes or any(a not in AXIS_GATES for a in axes):
        raise ValueError(
            f"rotation must be axis letters from 'XYZ' applied in order (e.g. 'Y' or 'XY'), "
            f"got {rotation!r}"
        )
    return axes


def check_angle_features(template: str, features: TensorLike, n_wires: int) -> TensorLike:
    """``features`` as a real array of shape ``(n,)`` or ``(batch, n)``, ``n <= n_wires``."""
    features = as_tensor(features)
    shape = tuple(math.shape(features))
    if len(shape) not in (1, 2) or shape[-1] == 0:
        raise ValueError(
            f"{template}: features must have shape (n_features,) with 1 <= n_features <= "
            f"{n_wires}, or (batch, n_features); got shape {shape}"
        )
    if is_complex(features):
        raise ValueError(f"{template}: features must be real angles, got complex values")
    if shape[-1] > n_wires:
        raise ValueError(
            f"{template}: {shape[-1]} features do not fit on {n_wires} wires (one feature per "
            f"wire): use at least {shape[-1]} wires or reduce the features (e.g. with PCA)"
        )
    check_finite(template, "features", features)
    return features


class AngleEncoding(Operation):
    r"""One rotation per feature: feature :math:`i` sets the angle on wire :math:`i`.

    For each axis in ``rotation`` (in order), wire :math:`i` gets
    :math:`R_\text{axis}(\text{scaling}\cdot x_i)`. With ``rotation="Y"`` and
    :math:`|0\rangle` input, :math:`\langle Z_i\rangle = \cos(\text{scaling}\cdot x_i)`.
    Fewer features than wires leave the remaining wires untouched.

    Parameters
    ----------
    features : tensor_like
        Shape ``(n_features,)`` with ``n_features <= len(wires)``, or
        ``(batch, n_features)``.
    wires : Sequence
        Wires; feature ``i`` goes to ``wires[i]``.
    rotation : str or Sequence[str]
        ``"X"``, ``"Y"``, ``"Z"`` or several letters such as ``"XY"`` (applied in order).
    scaling : float
        Factor applied to every feature (e.g. ``np.pi`` for features in [0, 1]).

    Examples
    --------
    >>> AngleEncoding([0.1, 0.2], wires=[0, 1, 2], rotation="XY").decomposition()
    [RX(0.1, wires=[0]), RX(0.2, wires=[1]), RY(0.1, wires=[0]), RY(0.2, wires=[1])]
    """

    grad_method = None

    def __init__(
        self,
        features: TensorLike,
        wires: WiresLike,
        rotation: str = "Y",
        scaling: float = 1.0,
        id: str | None = None,
    ):
        wires = qml.wires.Wires(wires)
        axes = parse_rotation(rotation)
        scaling = check_scalar("AngleEncoding", "scaling", scaling)
        features = check_angle_features("AngleEncoding", features, len(wires))
        self._hyperparameters = {"rotation": axes, "scaling": scaling}
        super().__init__(features, wires=wires, id=id)

    num_params = 1
    ndim_params = (1,)

    @staticmethod
    def compute_decomposition(
        features: TensorLike, wires: WiresLike, rotation: str, scaling: float
    ) -> list[Operator]:
        """One rotation per feature and axis letter, letter by letter."""
        angles = features if scaling == 1.0 else scaling * features
        n = math.shape(features)[-1]
        return [
            AXIS_GATES[axis](angles[..., i], wires=wires[i]) for axis in rotation for i in range(n)
        ]


class AmplitudeEncoding(Operation):
    r"""Prepare :math:`\sum_k x_k |k\rangle / \|x\|` from a feature vector :math:`x`.

    Features are padded with ``pad_with`` to :math:`2^n` entries for :math:`n` wires,
    then normalised. The state is prepared by Möttönen-style uniformly-controlled
    rotations (Möttönen et al., quant-ph/0407010), each written out as rotations and
    CNOTs along a Gray code:

    - real features: one uniformly-controlled RY per wire; the signs are set by the
      last wire's angles, so only RY and CNOT gates appear (:math:`2^n - 1` RY,
      :math:`2^n - 2` CNOT);
    - complex features: the same RY tree for the moduli, then uniformly-controlled RZ
      for the phases (RY, RZ, CNOT).

    The prepared state equals the normalised vector **up to a global phase** (complex
    features; real ones match exactly), which no measurement sees; under ``qml.ctrl``
    that phase would matter, so do not control this template.

    Parameters
    ----------
    features : tensor_like
        Shape ``(n_features,)`` with ``n_features <= 2**len(wires)``, or
        ``(batch, n_features)``; real or complex.
    wires : Sequence
        Wires; ``wires[0]`` is the most significant bit of the basis index.
    pad_with : float or complex or None
        Value for the missing entries; ``None`` requires exactly ``2**len(wires)``.
    normalize : bool
        Divide by the norm. With ``False`` the (padded) vector must already have norm 1.

    Examples
    --------
    >>> AmplitudeEncoding.n_wires_for(6)
    3
    """

    grad_method = None

    def __init__(
        self,
        features: TensorLike,
        wires: WiresLike,
        pad_with: complex = 0.0,
        normalize: bool = True,
        id: str | None = None,
    ):
        wires = qml.wires.Wires(wires)
        features = _pad_and_normalize(as_tensor(features), len(wires), pad_with, normalize)
        self._hyperparameters: dict[str, Any] = {}
        super().__init__(features, wires=wires, id=id)

    num_params = 1
    ndim_params = (1,)

    @staticmethod
    def n_wires_for(n_features: int) -> int:
        """Fewest wires whose :math:`2^n` amplitudes hold ``n_features`` values."""
        if int(n_features) < 1:
            raise ValueError(f"n_features must be at least 1, got {n_features}")
        return max(1, (int(n_features) - 1).bit_length())

    @staticmethod
    def compute_decomposition(features: TensorLike, wires: WiresLike) -> list[Operator]:
        """Uniformly-controlled RY per wire (moduli and signs), then RZ (complex phases)."""
        n = len(wires)
        batch = tuple(math.shape(features)[:-1])
        complex_ = is_complex(features)
        values = math.abs(features) if complex_ else features
        ops = []
        for k in range(n):
            blocks = math.reshape(values, (*batch, 2**k, 2, 2 ** (n - k - 1)))
            if k == n - 1:  # signed leaves: atan2 puts each pair's signs into the angle
                low, high = blocks[..., 0, 0], blocks[..., 1, 0]
            else:
                low, high = _norm(blocks[..., 0, :]), _norm(blocks[..., 1, :])
            angles = 2 * _atan2(high, low)
            ops += uniformly_controlled_rotation(qml.RY, angles, wires[:k], wires[k])
        if complex_:
            phases = _phase(features)
            for k in reversed(range(n)):
                pairs = math.reshape(phases, (*batch, 2**k, 2))
                diff = pairs[..., 1] - pairs[..., 0]
                ops += uniformly_controlled_rotation(qml.RZ, diff, wires[:k], wires[k])
                phases = (pairs[..., 0] + pairs[..., 1]) / 2  # what is left is global
        return ops


def uniformly_controlled_rotation(
    gate: type[Operation], angles: TensorLike, controls: WiresLike, target: Any
) -> list[Operator]:
    r"""Rotations and CNOTs applying ``gate(angles[..., j])`` when ``controls`` read ``j``.

    ``controls[0]`` is the most significant bit of ``j``. With :math:`k` controls this is
    :math:`2^k` rotations, each followed by a CNOT from the control whose bit changes
    next along the Gray code; the rotation angles solve
    :math:`\alpha_j = \sum_i (-1)^{j \cdot g(i)} \theta_i` (:math:`g` the Gray code), since
    a CNOT flips the sign of a following RY or RZ angle for the control states it fires on.
    """
    k = len(controls)
    if k == 0:
        return [gate(angles[..., 0], wires=target)]
    size = 2**k
    gray = [i ^ (i >> 1) for i in range(size)]
    signs = np.array(
        [[(-1) ** bin(j & gray[i]).count("1") for i in range(size)] for j in range(size)],
        dtype=float,
    )
    signs = math.cast_like(math.convert_like(signs / size, angles), angles)
    thetas = math.tensordot(angles, signs, axes=[[-1], [0]])
    ops = []
    for i in range(size):
        ops.append(gate(thetas[..., i], wires=target))
        bit = (gray[i] ^ gray[(i + 1) % size]).bit_length() - 1
        ops.append(qml.CNOT(wires=[controls[k - 1 - bit], target]))
    return ops


def _pad_and_normalize(features, n_wires: int, pad_with, normalize: bool):
    name = "AmplitudeEncoding"
    shape = tuple(math.shape(features))
    dim = 2**n_wires
    if len(shape) not in (1, 2) or shape[-1] == 0:
        raise ValueError(
            f"{name}: features must have shape (n_features,) or (batch, n_features), "
            f"got shape {shape}"
        )
    size = shape[-1]
    if size > dim:
        raise ValueError(
            f"{name}: {size} features do not fit in the {dim} amplitudes of {n_wires} wires: "
            f"use AmplitudeEncoding.n_wires_for({size}) = "
            f"{AmplitudeEncoding.n_wires_for(size)} wires"
        )
    check_finite(name, "features", features)
    if size < dim:
        if pad_with is None:
            raise ValueError(
                f"{name}: got {size} features for {dim} amplitudes and pad_with=None: "
                f"pass exactly {dim} features or a pad_with value such as 0.0"
            )
        check_finite(name, "pad_with", np.asarray(pad_with))
        padding = np.full((*shape[:-1], dim - size), pad_with)
        if np.iscomplexobj(padding) and not is_complex(features):
            features = math.cast(features, "complex128")
        padding = math.cast_like(math.convert_like(padding, features), features)
        features = math.concatenate([features, padding], axis=-1)
    norms = math.sqrt(math.sum(math.real(math.conj(features) * features), axis=-1))
    if not math.is_abstract(norms):
        flat = np.reshape(math.toarray(norms), -1)
        zero = np.flatnonzero(flat == 0)
        if zero.size:
            where = f" (batch entries {zero.tolist()})" if len(shape) == 2 else ""
            raise ValueError(
                f"{name}: the feature vector is all zeros{where} after padding, so it has no "
                "direction to encode: drop such samples or add a constant feature"
            )
        tol = 1e-5 if "32" in str(math.get_dtype_name(features)) else 1e-9
        if not normalize and not np.allclose(flat, 1.0, rtol=0, atol=tol):
            worst = flat[np.argmax(np.abs(flat - 1))]
            raise ValueError(
                f"{name}: features have norm {worst:.6g}, not 1, and normalize=False: pass "
                "normalize=True or divide the features by their norm"
            )
    if normalize:
        features = features / math.cast_like(norms, features)[..., None]
    return features


def _norm(blocks):
    """Euclidean norm over the last axis, with a finite gradient at zero."""
    squares = math.sum(blocks * blocks, axis=-1)
    positive = squares > 0
    safe = math.where(positive, squares, math.ones_like(squares))
    return math.where(positive, math.sqrt(safe), math.zeros_like(squares))


def _atan2(y, x):
    """``arctan2(y, x)``, 0 (with zero gradient) where both vanish."""
    nonzero = (x != 0) | (y != 0)
    safe_x = math.where(nonzero, x, math.ones_like(x))
    safe_y = math.where(nonzero, y, math.zeros_like(y))
    return math.where(nonzero, math.arctan2(safe_y, safe_x), math.zeros_like(x))


def _phase(values):
    """Complex argument, 0 (with zero gradient) where the value is 0."""
    nonzero = math.abs(values) > 0
    safe = math.where(nonzero, values, math.ones_like(values))
    return math.where(nonzero, math.angle(safe), math.zeros_like(math.real(values)))
