"""Parametrized circuits: circuits recorded with Symbols and bound to values later.

This is TFQ's "circuit with sympy symbols" in PennyLane terms. A
:class:`ParametrizedCircuit` keeps operators whose parameters are
:class:`~qstore_pl.circuits.Symbol` placeholders; :meth:`ParametrizedCircuit.bind`
rebuilds every operator that holds a symbol from its class, its metadata and the bound
values (PennyLane's ``_unflatten``), so operators that do math on their parameters at
construction get real numbers, and gradients flow through autograd, torch, JAX or
TensorFlow values, batched or not.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.measurements import MeasurementProcess
from pennylane.operation import Operator
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits import json_format
from qstore_pl.circuits.symbol import (
    Symbol,
    holds_symbol,
    infer_shapes,
    normalize_shape,
    symbol_array,
)

#: Value of the ``"format"`` field of a serialised parametrized circuit.
FORMAT_NAME = "qstore_pl.parametrized_circuit"
#: Version of that format.
FORMAT_VERSION = 1

# ``_compile`` turns an operator into a recipe: a function of the bound values
# ({name: array}) and their batch axes ({name: 0 or 1}) that rebuilds the operator, or a
# _Const holding an object with no symbol in it (reused as it is).


class BindError(ValueError):
    """An operator could not be rebuilt from the bound values (e.g. PennyLane does not
    broadcast that operator's parameters over a batch)."""


class _Const:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _compile(x, where: str, found: list[Symbol]):
    """A recipe that rebuilds ``x`` with its Symbols replaced by bound values."""
    if isinstance(x, Symbol):
        found.append(x)
        return _symbol_getter(x)
    if isinstance(x, Operator | MeasurementProcess):
        return _compile_flattened(x, found)
    if holds_symbol(x):
        return _compile_object_array(x, where, found)
    if isinstance(x, tuple | list):
        parts = [_compile(v, where, found) for v in x]
        if all(isinstance(p, _Const) for p in parts):
            return _Const(x)
        kind = type(x)
        return lambda values, axes: kind(_run(p, values, axes) for p in parts)
    if isinstance(x, dict):
        keys = list(x)
        parts = [_compile(x[k], where, found) for k in keys]
        if all(isinstance(p, _Const) for p in parts):
            return _Const(x)
        return lambda values, axes: {k: _run(p, values, axes) for k, p in zip(keys, parts)}
    if _has_nan(x):
        raise ValueError(
            f"{where} holds a NaN, which is what arithmetic on a Symbol placeholder gives: "
            "the operator computed something from a symbol at construction (or was given "
            "np.array([...]) of symbols, math on symbols, or a NaN constant). A "
            "ParametrizedCircuit can only pass symbols straight into operator parameters "
            "(w[i], c * w[i], -w[i], w[i] / c, or a slice of a symbol array). Bind such "
            "values classically as their own symbol."
        )
    return _Const(x)


def _compile_object_array(array: np.ndarray, where: str, found: list[Symbol]):
    """An object array of Symbols (a slice of a placeholder) and real constants,
    rebuilt as one array of the bound values' type with the batch axis in front."""
    elements = list(array.flat)
    for v in elements:
        if isinstance(v, Symbol):
            found.append(v)
        elif isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
            raise ValueError(
                f"{where} holds an array mixing Symbols with {v!r}; only real constants "
                "may sit next to symbols"
            )
    getters = [_symbol_getter(v) if isinstance(v, Symbol) else None for v in elements]
    names = [v.name if isinstance(v, Symbol) else None for v in elements]
    shape = array.shape

    def stacked(values, axes):
        items = [g(values, axes) if g else None for g in getters]
        batched = [bool(n) and axes[n] == 1 for n in names]
        if any(batched):
            ref = qml.math.zeros_like(items[batched.index(True)])
        else:
            ref = qml.math.zeros_like(next(v for v in items if v is not None))
        # constants, and unbatched symbols of a batched binding, take the batch's shape
        items = [
            float(c) + ref if v is None else (v if b or not any(batched) else v + ref)
            for v, b, c in zip(items, batched, elements)
        ]
        flat = qml.math.stack(items, axis=-1)
        batch = tuple(qml.math.shape(flat)[:-1])
        return qml.math.reshape(flat, (*batch, *shape))

    return stacked


def _compile_flattened(obj, found: list[Symbol]):
    where = f"operator {obj.name}" if isinstance(obj, Operator) else type(obj).__name__
    data, meta = obj._flatten()
    start = len(found)
    data_recipe = _compile(tuple(data), where, found)
    meta_recipe = _compile(meta, where, found)
    if len(found) == start:
        return _Const(obj)
    cls = type(obj)

    def rebuild(values, axes):
        data, meta = _run(data_recipe, values, axes), _run(meta_recipe, values, axes)
        try:
            return cls._unflatten(data, meta)
        except BindError:
            raise
        except Exception as err:
            batch = " (a batch dimension?)" if any(axes.values()) else ""
            raise BindError(
                f"bind: {where} rejected the bound values{batch}: {type(err).__name__}: {err}"
            ) from err

    return rebuild


def _run(recipe, values, axes):
    return recipe.value if isinstance(recipe, _Const) else recipe(values, axes)


def _symbol_getter(symbol: Symbol) -> Callable:
    name, index, scale = symbol.name, symbol.index, symbol.scale

    def get(values, axes):
        value = values[name]
        key = (slice(None),) * axes[name] + index
        if key:
            value = value[key]
        return value if scale == 1.0 else value * scale

    return get


def _has_nan(x) -> bool:
    if isinstance(x, str | bool | Wires | type) or x is None:
        return False
    try:
        array = np.asarray(qml.math.unwrap(x))
    except Exception:
        return False
    return array.dtype.kind in "fc" and bool(np.isnan(array).any())


class ParametrizedCircuit:
    """A circuit whose parameters are named symbol arrays, bound to values on demand.

    Build one with :meth:`from_function` (or from operators and measurements holding
    :class:`~qstore_pl.circuits.Symbol` parameters), bind it with :meth:`bind`, store it
    with :meth:`to_json`.

    Parameters
    ----------
    operations : Sequence[Operator]
        Operators whose parameters may be Symbols (or slices of a symbol array).
    measurements : Sequence[MeasurementProcess]
        Measurements (their observables may hold Symbols too).
    symbols : Mapping[str, tuple[int, ...]]
        Name and shape of every symbol array; every Symbol used must lie inside one.

    Examples
    --------
    >>> def ansatz(weights, x):
    ...     qml.RX(x, wires=0)
    ...     qml.RY(weights[0], wires=0)
    ...     qml.CNOT(wires=[0, 1])
    ...     qml.RZ(2 * weights[1], wires=1)
    ...     return qml.expval(qml.PauliZ(1))
    >>> pc = ParametrizedCircuit.from_function(ansatz, weights=2, x=())
    >>> pc.symbols
    {'weights': (2,), 'x': ()}
    >>> tape = pc.bind(weights=np.array([0.1, 0.2]), x=0.5)
    """

    def __init__(
        self,
        operations: Sequence[Operator],
        measurements: Sequence[MeasurementProcess] = (),
        symbols: Mapping[str, int | Sequence[int]] | None = None,
    ):
        self._operations = list(operations)
        self._measurements = list(measurements)
        for item in self._operations:
            if not isinstance(item, Operator):
                raise TypeError(f"operations must be PennyLane operators, got {item!r}")
        for item in self._measurements:
            if not isinstance(item, MeasurementProcess):
                raise TypeError(f"measurements must be measurement processes, got {item!r}")
        found: list[Symbol] = []
        self._op_recipes = [
            _compile(op, f"operations[{i}] ({op.name})", found)
            for i, op in enumerate(self._operations)
        ]
        self._mp_recipes = [
            _compile(mp, f"measurements[{i}] ({type(mp).__name__})", found)
            for i, mp in enumerate(self._measurements)
        ]
        if symbols is None:
            symbols = infer_shapes(found)
        self._symbols = {name: normalize_shape(name, shape) for name, shape in symbols.items()}
        for s in found:
            if s.name not in self._symbols:
                raise ValueError(
                    f"{s!r} is used but symbol {s.name!r} is not declared; declare it with "
                    f"{s.name}=<shape> (declared: {sorted(self._symbols)})"
                )
            shape = self._symbols[s.name]
            if len(s.index) != len(shape) or any(i >= n for i, n in zip(s.index, shape)):
                raise ValueError(f"{s!r} lies outside the declared shape {shape} of {s.name!r}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_function(
        cls, fn: Callable, /, **symbol_shapes: int | Sequence[int]
    ) -> ParametrizedCircuit:
        """Record the operators and measurements ``fn`` queues when called with symbol
        placeholders.

        ``fn`` is called with one keyword argument per symbol: an object array of the
        declared shape whose elements are Symbols (a Symbol itself for shape ``()``).
        Index it (``weights[l, i]``), scale elements by constants, or pass a slice to an
        operator that takes an array (templates). What ``fn`` returns is ignored; the
        measurements it queues (if any) are recorded.

        Raises
        ------
        ValueError
            If an operator did arithmetic on a symbol at construction.
        """
        if not symbol_shapes:
            raise ValueError("declare at least one symbol, e.g. weights=(2, 3)")
        shapes = {name: normalize_shape(name, s) for name, s in symbol_shapes.items()}
        placeholders = {name: symbol_array(name, shape) for name, shape in shapes.items()}
        with qml.queuing.AnnotatedQueue() as queue:
            try:
                fn(**placeholders)
            except TypeError as err:
                if "Symbol" in str(err) or "ufunc" in str(err):
                    raise TypeError(
                        f"recording {getattr(fn, '__name__', fn)!r} failed: {err}. Symbols "
                        "can only be passed straight into operators, scaled by constants."
                    ) from err
                raise
        operations, measurements = qml.queuing.process_queue(queue)
        return cls(operations, measurements, shapes)

    # ------------------------------------------------------------------ properties

    @property
    def symbols(self) -> dict[str, tuple[int, ...]]:
        """Name → shape of every symbol array."""
        return dict(self._symbols)

    @property
    def operations(self) -> list[Operator]:
        """The recorded operators; their parameters are Symbols where bound later."""
        return list(self._operations)

    @property
    def measurements(self) -> list[MeasurementProcess]:
        """The recorded measurements (possibly none)."""
        return list(self._measurements)

    @property
    def wires(self) -> Wires:
        """Every wire the circuit acts on or measures."""
        return QuantumScript(self._operations, self._measurements).wires

    def __repr__(self) -> str:
        symbols = ", ".join(f"{k}={v}" for k, v in self._symbols.items())
        return (
            f"<ParametrizedCircuit: {len(self._operations)} operations, "
            f"{len(self._measurements)} measurements, symbols {symbols}>"
        )

    # ------------------------------------------------------------------ binding

    def _check_values(self, values: Mapping) -> tuple[int, ...]:
        missing = [name for name in self._symbols if name not in values]
        unknown = [name for name in values if name not in self._symbols]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing values for {missing}")
            if unknown:
                parts.append(f"unknown symbols {unknown}")
            raise ValueError(f"bind: {'; '.join(parts)}. Symbols and shapes: {self._symbols}")
        batch = None
        for name, shape in self._symbols.items():
            got = tuple(qml.math.shape(values[name]))
            if got == shape:
                continue
            if len(got) == len(shape) + 1 and got[1:] == shape:
                if batch is not None and batch != got[:1]:
                    raise ValueError(
                        f"bind: batch sizes differ: {name!r} has {got[0]}, others {batch[0]}"
                    )
                batch = got[:1]
                continue
            raise ValueError(
                f"bind: {name!r} must have shape {shape} (or (batch, *{shape}) for "
                f"parameter broadcasting), got {got}"
            )
        return batch or ()

    def bind(self, **values: Any) -> QuantumScript:
        """The circuit with every symbol replaced by its value.

        Parameters
        ----------
        **values : tensor_like
            One array per symbol, of the declared shape or with one leading batch
            dimension (PennyLane parameter broadcasting; every batched symbol must have
            the same batch size, unbatched ones are shared by the batch). numpy, autograd
            (including ``ArrayBox`` inside ``qml.grad``), torch, JAX and TensorFlow values
            are used as they are, so gradients flow through the bound tape.

        Raises
        ------
        ValueError
            For a missing or unknown symbol, or a value of the wrong shape.
        """
        values = {
            name: np.asarray(v) if isinstance(v, list | tuple) else v for name, v in values.items()
        }
        batch = self._check_values(values)
        axes = {
            name: int(bool(batch) and len(qml.math.shape(v)) > len(self._symbols[name]))
            for name, v in values.items()
        }
        with qml.QueuingManager.stop_recording():
            ops = [_run(recipe, values, axes) for recipe in self._op_recipes]
            measurements = [_run(recipe, values, axes) for recipe in self._mp_recipes]
        return QuantumScript(ops, measurements)

    def __call__(self, **values):
        """Bind and queue the circuit (use it as the body of a QNode).

        Returns the bound measurement processes: ``None`` if there are none, the single
        one, or a tuple.
        """
        tape = self.bind(**values)
        for op in tape.operations:
            qml.apply(op)
        measurements = [qml.apply(mp) for mp in tape.measurements]
        if not measurements:
            return None
        return measurements[0] if len(measurements) == 1 else tuple(measurements)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict:
        """The JSON-able form: symbols, operations and measurements (symbol leaves are
        tagged ``{"$": "symbol", ...}``)."""
        encoder = json_format.Encoder(symbols=True)
        try:
            operations = [encoder.op(op) for op in self._operations]
            measurements = [encoder.mp(mp) for mp in self._measurements]
        except json_format.NotSerializable as err:
            raise ValueError(
                json_format.not_serializable_message(err, None, "the parametrized circuit", False)
            ) from None
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "symbols": {name: list(shape) for name, shape in self._symbols.items()},
            "operations": operations,
            "measurements": measurements,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ParametrizedCircuit:
        """Rebuild a circuit written by :meth:`to_dict`."""
        json_format.check_header(d, FORMAT_NAME, FORMAT_VERSION)
        symbols = d.get("symbols")
        if not isinstance(symbols, dict):
            raise ValueError("a parametrized circuit needs a 'symbols' object {name: shape}")
        decoder = json_format.Decoder(symbols=True)
        operations = [
            decoder.op(op, f"operations[{i}]")
            for i, op in enumerate(json_format.list_field(d, "operations", "circuit"))
        ]
        measurements = [
            decoder.mp(mp, f"measurements[{i}]")
            for i, mp in enumerate(json_format.list_field(d, "measurements", "circuit"))
        ]
        return cls(operations, measurements, {k: tuple(v) for k, v in symbols.items()})

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as strict JSON text."""
        return json.dumps(self.to_dict(), allow_nan=False, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> ParametrizedCircuit:
        """Rebuild a circuit from :meth:`to_json` text."""
        return cls.from_dict(json_format.loads(text))
