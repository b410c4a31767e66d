"""Symbolic gate angles shared by the SDK converters (Qiskit, Cirq, OpenQASM 3).

Other SDKs write a parameter as an expression of named symbols (Qiskit's
``ParameterExpression``, Cirq's sympy expressions, OpenQASM 3 ``input`` variables); a
:class:`~qstore_pl.circuits.Symbol` is one symbol times a constant. The converters read
an expression as a :class:`Linear` form ``c + sum_k a_k * s_k`` and write it back as
PennyLane operators:

* an angle that is one scaled symbol or a constant becomes the operator's parameter;
* any other linear angle of a gate in :data:`ADDITIVE_GATES` (one generator:
  ``G(a + b) = G(a) G(b)``) becomes one operator per term, which commute, so binding
  gives the same unitary: ``RX(2*x + 1)`` becomes ``RX(1.0) RX(2*x)``;
* anything else (a product of symbols, ``sin(x)``, ``x + 1`` inside a ``U3``) raises a
  ``ValueError`` naming the gate and the expression.

Symbol names travel as text: a scalar symbol ``x`` is ``"x"``, element ``(i, j)`` of the
symbol array ``w`` is ``"w[i,j]"`` (Qiskit names the elements of a ``ParameterVector``
``"w[0]"``, ``"w[1]"``, ... the same way).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pennylane.operation import Operator

from qstore_pl.circuits.symbol import Symbol

#: PennyLane gates with one parameter entering as ``exp(-i theta G / 2)`` (or a phase
#: ``exp(i theta)``) for a fixed generator ``G``: a sum of angles is a product of gates.
ADDITIVE_GATES = frozenset(
    {
        "RX",
        "RY",
        "RZ",
        "PhaseShift",
        "U1",
        "CRX",
        "CRY",
        "CRZ",
        "ControlledPhaseShift",
        "IsingXX",
        "IsingYY",
        "IsingZZ",
        "IsingXY",
        "MultiRZ",
        "GlobalPhase",
    }
)

_NAME = re.compile(r"^([A-Za-z_]\w*)(?:\[\s*(\d+(?:\s*,\s*\d+)*)\s*\])?$")


def symbol_name(symbol: Symbol) -> str:
    """The text name of ``symbol`` without its scale: ``"x"`` or ``"w[0,1]"``."""
    if not symbol.index:
        return symbol.name
    return f"{symbol.name}[{','.join(str(i) for i in symbol.index)}]"


def parse_symbol_name(name: str, where: str) -> Symbol:
    """The :class:`Symbol` (scale 1) that the text ``name`` stands for.

    Raises
    ------
    ValueError
        If ``name`` is neither an identifier nor ``identifier[i, j, ...]``.
    """
    match = _NAME.match(name.strip()) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"{where}: the parameter name {name!r} has no Symbol form; name parameters like "
            "Python identifiers ('theta'), optionally indexed ('w[0]', 'w[1,2]')"
        )
    index = tuple(int(i) for i in match.group(2).split(",")) if match.group(2) else ()
    return Symbol(match.group(1), index)


@dataclass(frozen=True)
class Linear:
    """A linear angle ``constant + sum(coefficient * symbol)``.

    Attributes
    ----------
    constant : float
        The constant term (radians, or whatever unit the gate's parameter has).
    terms : dict
        ``(symbol name, index) -> coefficient``, no zero coefficients.
    """

    constant: float = 0.0
    terms: Mapping[tuple[str, tuple[int, ...]], float] = field(default_factory=dict)

    @classmethod
    def of(cls, value) -> Linear:
        """The linear form of a number or a :class:`Symbol`."""
        if isinstance(value, Symbol):
            return cls(0.0, {(value.name, value.index): value.scale} if value.scale else {})
        return cls(_real(value, "an angle"), {})

    @property
    def symbols(self) -> list[Symbol]:
        """One scaled :class:`Symbol` per term."""
        return [Symbol(name, index, a) for (name, index), a in self.terms.items()]

    def single(self) -> float | Symbol | None:
        """The angle as one operator parameter (a number or a scaled symbol), or None
        when it needs several (a symbol plus a constant, or several symbols)."""
        if not self.terms:
            return self.constant
        if len(self.terms) == 1 and self.constant == 0.0:
            return self.symbols[0]
        return None

    def pieces(self) -> list[float | Symbol]:
        """Parameters whose sum is the angle: the scaled symbols, then the constant if
        it is not zero."""
        return [*self.symbols, *([self.constant] if self.constant or not self.terms else [])]

    def __str__(self) -> str:
        parts = [f"{a!r}*{symbol_name(Symbol(n, i))}" for (n, i), a in self.terms.items()]
        if self.constant or not parts:
            parts.append(repr(self.constant))
        return " + ".join(parts)

    # arithmetic used by the OpenQASM 3 expression evaluator
    def __add__(self, other) -> Linear:
        other = other if isinstance(other, Linear) else Linear.of(other)
        terms = dict(self.terms)
        for key, a in other.terms.items():
            terms[key] = terms.get(key, 0.0) + a
        return Linear(self.constant + other.constant, {k: a for k, a in terms.items() if a})

    __radd__ = __add__

    def __neg__(self) -> Linear:
        return self * -1.0

    def __pos__(self) -> Linear:
        return self

    def __sub__(self, other) -> Linear:
        return self + (-(other if isinstance(other, Linear) else Linear.of(other)))

    def __rsub__(self, other) -> Linear:
        return -self + other

    def __mul__(self, other) -> Linear:
        if isinstance(other, Linear):
            if other.terms and self.terms:
                raise ValueError(f"({self}) * ({other}) is not linear in the parameters")
            if self.terms:
                return self * other.constant
            return other * self.constant
        factor = _real(other, "a factor")
        return Linear(
            self.constant * factor, {k: a * factor for k, a in self.terms.items() if a * factor}
        )

    __rmul__ = __mul__

    def __truediv__(self, other) -> Linear:
        if isinstance(other, Linear):
            if other.terms:
                raise ValueError(f"({self}) / ({other}) is not linear in the parameters")
            other = other.constant
        return self * (1.0 / _real(other, "a divisor"))

    def __rtruediv__(self, other) -> Linear:
        if self.terms:
            raise ValueError(f"{other} / ({self}) is not linear in the parameters")
        return Linear.of(_real(other, "a number") / self.constant)

    def __pow__(self, other) -> Linear:
        other = other.constant if isinstance(other, Linear) and not other.terms else other
        if self.terms or isinstance(other, Linear):
            raise ValueError(f"({self}) ** ({other}) is not linear in the parameters")
        return Linear.of(self.constant ** _real(other, "an exponent"))

    def __rpow__(self, other) -> Linear:
        if self.terms:
            raise ValueError(f"{other} ** ({self}) is not linear in the parameters")
        return Linear.of(_real(other, "a number") ** self.constant)

    def __float__(self) -> float:
        if self.terms:
            raise ValueError(f"{self} is symbolic, not a number")
        return self.constant


def _real(value, what: str) -> float:
    if isinstance(value, complex | np.complexfloating):
        if value.imag:
            raise ValueError(f"{what} must be real, got {value}")
        value = value.real
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    return value


def linear_from_sympy(expr, where: str) -> Linear:
    """The linear form of a sympy expression (Cirq's parameters, Qiskit's
    ``ParameterExpression.sympify()``).

    Raises
    ------
    ValueError
        If ``expr`` is not linear in its symbols (``x*y``, ``sin(x)``), naming ``where``.
    """
    import sympy

    expr = sympy.sympify(expr)
    terms: dict = {}
    for sym in sorted(expr.free_symbols, key=lambda s: s.name):
        derivative = sympy.diff(expr, sym)
        if derivative.free_symbols:
            raise ValueError(
                f"{where}: the parameter {expr} is not linear in {sym} (only sums of "
                "constants times symbols keep symbols); bind it to numbers first"
            )
        symbol = parse_symbol_name(sym.name, where)
        coefficient = _real(complex(derivative), f"{where}: the coefficient of {sym}")
        if coefficient:
            terms[(symbol.name, symbol.index)] = coefficient
    constant = expr.subs({s: 0 for s in expr.free_symbols})
    return Linear(_real(complex(constant), f"{where}: the constant of {expr}"), terms)


def build_operators(
    make: Callable[[list], Operator],
    name: str,
    angles: Sequence[Linear],
    where: str,
) -> list[Operator]:
    """The PennyLane operators for gate ``name`` with linear ``angles``.

    ``make(params)`` builds the operator from plain parameters (numbers or Symbols).
    One operator when every angle is a number or one scaled symbol; one per term of the
    angle for a one-parameter gate in :data:`ADDITIVE_GATES`.

    Raises
    ------
    ValueError
        Naming the gate (``where``) when its angles need more than that.
    """
    singles = [a.single() for a in angles]
    if all(s is not None for s in singles):
        return [make(singles)]
    if name in ADDITIVE_GATES and len(angles) == 1:
        return [make([piece]) for piece in angles[0].pieces()]
    bad = next(str(a) for a, s in zip(angles, singles) if s is None)
    raise ValueError(
        f"{where}: the parameter {bad} of {name} is not one scaled symbol, and {name} "
        f"does not split into a product of gates (only {', '.join(sorted(ADDITIVE_GATES))} "
        "do); decompose the gate into rotations first (e.g. Qiskit's "
        "transpile(qc, basis_gates=['rz', 'sx', 'x', 'cx']))"
    )
