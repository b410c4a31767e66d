"""Symbols: named placeholder parameters of a circuit (TFQ's sympy symbols).

A :class:`Symbol` stands for one element of a named parameter array, optionally
scaled by a constant. Circuits are recorded with symbols in place of numbers and
bound to values later (see :class:`~qstore_pl.circuits.ParametrizedCircuit`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import autoray
import numpy as np


class Symbol(float):
    """A placeholder parameter: element ``index`` of the symbol array ``name``, times ``scale``.

    ``Symbol`` derives from ``float`` so that PennyLane operators accept it as a parameter
    at construction (they check its dimension and interface); its float value is NaN, so
    any arithmetic done on it shows up as a NaN in the operator's data and is reported
    when a circuit is recorded, instead of silently producing a wrong circuit. numpy
    ufuncs (``np.cos(s)``) raise a ``TypeError``.
    Only scaling by a real constant keeps a symbol: ``2 * w[0]``, ``-w[0]``, ``w[0] / 2``.

    ``Symbol(name, index=(), scale=1.0)`` builds one; the arguments become its attributes.

    Attributes
    ----------
    name : str
        Name of the symbol array (a Python identifier).
    index : tuple of int
        Element of the array; ``()`` for a scalar symbol.
    scale : float
        Constant factor the bound value is multiplied by.

    Examples
    --------
    >>> theta = Symbol("weights", (0, 1))
    >>> -2 * theta
    Symbol('weights', (0, 1), scale=-2.0)
    """

    # numpy must not turn a Symbol into a NaN float: with ``__array_ufunc__ = None``
    # ``np.float64(2) * s`` defers to ``Symbol.__rmul__`` and ``np.cos(s)`` raises.
    __array_ufunc__ = None

    name: str
    index: tuple[int, ...]
    scale: float

    def __new__(cls, name: str, index: Sequence[int] = (), scale: float = 1.0):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"a Symbol name must be a Python identifier, got {name!r}")
        if isinstance(index, numbers.Integral):
            index = (int(index),)
        try:
            index = tuple(int(i) for i in index)
        except TypeError as err:
            raise ValueError(f"a Symbol index must be a tuple of ints, got {index!r}") from err
        if any(i < 0 for i in index):
            raise ValueError(f"a Symbol index must be non-negative, got {index}")
        if isinstance(scale, Symbol) or not isinstance(scale, numbers.Real):
            raise TypeError(f"a Symbol scale must be a real number, got {scale!r}")
        scale = float(scale)
        if not math.isfinite(scale):
            raise ValueError(f"a Symbol scale must be finite, got {scale}")
        self = super().__new__(cls, math.nan)
        self.name, self.index, self.scale = name, index, scale
        return self

    def __repr__(self) -> str:
        scale = "" if self.scale == 1.0 else f", scale={self.scale!r}"
        return f"Symbol({self.name!r}, {self.index}{scale})"

    __str__ = __repr__

    def __reduce__(self):
        return (Symbol, (self.name, self.index, self.scale))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __eq__(self, other) -> bool:
        if not isinstance(other, Symbol):
            return False
        return (self.name, self.index, self.scale) == (other.name, other.index, other.scale)

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("Symbol", self.name, self.index, self.scale))

    def _scaled(self, factor) -> Symbol:
        if isinstance(factor, Symbol | bool | np.bool_) or not isinstance(factor, numbers.Real):
            raise TypeError(
                f"a Symbol can only be scaled by a real constant, not {type(factor).__name__} "
                f"({factor!r}); circuits may use w[i], c * w[i], -w[i] or w[i] / c"
            )
        return Symbol(self.name, self.index, self.scale * float(factor))

    def __mul__(self, other):
        return self._scaled(other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, Symbol | bool | np.bool_):
            if other == 0:
                raise ZeroDivisionError(f"{self!r} divided by zero")
            return self._scaled(1.0 / float(other))
        return self._scaled(other)  # raises the error of every unsupported factor

    def __neg__(self):
        return self._scaled(-1.0)

    def __pos__(self):
        return self

    # Other arithmetic is float arithmetic on NaN: harmless in an operator's caches (a
    # Hamiltonian's Pauli representation), reported when the NaN lands in its data.


# PennyLane asks autoray which library a parameter belongs to: a Symbol is a Python float.
autoray.register_backend(Symbol, "builtins")


def symbol_array(name: str, shape: int | Sequence[int]) -> Symbol | np.ndarray:
    """An array-like placeholder: an object array of ``shape`` whose elements are Symbols.

    Indexing it (``w[i, 0]``) gives a :class:`Symbol`; slicing gives a sub-array that an
    operator may take whole (e.g. ``qml.AngleEmbedding(x, wires)``). A shape of ``()``
    gives a single scalar Symbol.
    """
    shape = normalize_shape(name, shape)
    if shape == ():
        return Symbol(name)
    array = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        array[index] = Symbol(name, index)
    return array


def normalize_shape(name: str, shape: int | Sequence[int]) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints (an int ``n`` means ``(n,)``)."""
    if isinstance(shape, int | numbers.Integral):  # int too: mypy does not see it as one
        shape = (int(shape),)
    try:
        shape = tuple(int(n) for n in shape)
    except TypeError as err:
        raise ValueError(
            f"the shape of symbol {name!r} must be an int or a tuple of ints, got {shape!r}"
        ) from err
    if any(n < 0 for n in shape):
        raise ValueError(f"the shape of symbol {name!r} has a negative size: {shape}")
    return shape


def infer_shapes(
    symbols: Sequence[Symbol], declared: dict[str, tuple[int, ...]] | None = None
) -> dict[str, tuple[int, ...]]:
    """The smallest shape of each symbol array that holds every index used in
    ``symbols`` (and the ``declared`` shapes)."""
    shapes = dict(declared or {})
    for s in symbols:
        old = shapes.get(s.name, (0,) * len(s.index))
        if len(old) != len(s.index):
            raise ValueError(
                f"symbol {s.name!r} is used with indices of different length (a scalar and "
                "an array, or arrays of different rank); rename one of them"
            )
        shapes[s.name] = tuple(max(a, i + 1) for a, i in zip(old, s.index))
    return shapes


def holds_symbol(value: object) -> bool:
    """Whether ``value`` is an object array with at least one Symbol element."""
    return (
        isinstance(value, np.ndarray)
        and value.dtype == object
        and any(isinstance(v, Symbol) for v in value.flat)
    )
