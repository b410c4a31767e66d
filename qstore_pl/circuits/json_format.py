"""Circuits as JSON: an exact, versioned round trip of PennyLane tapes.

A tape becomes a JSON object::

    {"format": "qstore_pl.circuit", "version": 1,
     "operations": [{"op": "RX", "wires": [0], "data": [0.5]}, ...],
     "measurements": [{"mp": "ExpectationMP", "data": [{"op": "PauliZ", ...}, null], ...}],
     "shots": null, "trainable_params": [0]}

Operators are stored through PennyLane's pytree interface (``_flatten`` /
``_unflatten``, which every operator implements so that it can travel through JAX):
the class name, the data (numbers, arrays or nested operators, e.g. the factors of a
``Prod``) and the metadata (wires, hyperparameters). Operators that use the default
flattening are written as ``{"op", "wires", "data", "hyper"}``; the others keep their
metadata under ``"meta"``. Values other than JSON's own are tagged objects
``{"$": kind, ...}``:

================  ==================================================================
kind              value
================  ==================================================================
``float``         a non-finite float (``"nan"``, ``"inf"``, ``"-inf"``), so the text is
                  strict JSON
``complex``       ``re``, ``im``
``scalar``        a numpy scalar: ``dtype``, ``value``
``array``         ``dtype``, ``shape``, and ``value`` (0-d) or ``b64`` (little-endian
                  bytes); ``interface`` / ``requires_grad`` for autograd, torch, jax and
                  TensorFlow tensors, which come back in their framework
``tuple``         ``v``: the items (JSON lists are Python lists)
``dict``          ``items``: ``[key, value]`` pairs
``wires``         ``v``: wire labels
``opclass``       ``name``: an operator class (e.g. a template's entangler)
``symbol``        a :class:`~qstore_pl.circuits.Symbol` (parametrized circuits only)
``symbols``       an object array of Symbols (and real constants): ``shape``, ``items``
================  ==================================================================

Floats are written with ``repr`` and arrays as raw bytes, so parameters come back
bit for bit with their dtype (JAX arrays come back in float32 unless
``jax_enable_x64`` is on, as JAX itself decides). Not stored: operator ``id`` labels,
and anything that refers to mid-circuit measurement values (``qml.cond``, measurements
of ``qml.measure`` results), which raise a ``ValueError``.

Classes are named by their class name when PennyLane defines them, by
``"module:QualName"`` otherwise; only classes from ``pennylane``, ``qstore_pl`` or
:func:`register_operator` are loaded.
"""

from __future__ import annotations

import base64
import importlib
import json
import math
import numbers
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np
import pennylane as qml
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.tracer import getval
from pennylane.measurements import MeasurementProcess, Shots
from pennylane.operation import Operator
from pennylane.tape import QuantumScript
from pennylane.wires import Wires

from qstore_pl.circuits.symbol import Symbol, holds_symbol
from qstore_pl.support.limits import InputLimitError, current_limits, excerpt

#: Value of the ``"format"`` field of a serialised tape.
FORMAT_NAME = "qstore_pl.circuit"
#: Version of the format this module writes; it reads this version and older ones.
FORMAT_VERSION = 1

#: Top-level packages whose classes may be loaded by a ``"module:QualName"`` reference.
_TRUSTED_PACKAGES = ("pennylane", "qstore_pl")
_REGISTERED: dict[str, type] = {}
_FRAMEWORK_INTERFACES = ("autograd", "torch", "jax", "tensorflow")
# dtypes whose scalars survive ``.item()`` exactly (Python int, float, complex, bool)
_ITEM_EXACT = {"float16", "float32", "float64", "complex64", "complex128"}
_DECOMPOSE_DEPTH = 16


class NotSerializable(Exception):
    """A value inside an operator has no JSON form; ``op`` is the innermost operator."""

    def __init__(self, detail: str, op: Operator | MeasurementProcess | None = None):
        super().__init__(detail)
        self.detail, self.op = detail, op


def register_operator(cls: type) -> type:
    """Allow :func:`tape_from_dict` to load the operator class ``cls`` from outside
    PennyLane and qstore_pl (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Operator | MeasurementProcess)):
        raise TypeError(f"register_operator expects an Operator class, got {cls!r}")
    _REGISTERED[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return cls


# ----------------------------------------------------------------------------- classes


def _subclasses(base: type) -> dict[str, type]:
    found: dict[str, type] = {}
    stack: list[type] = [base]
    sub: type
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.split(".")[0] == "pennylane" and sub.__name__ not in found:
                found[sub.__name__] = sub
                stack.append(sub)
    return found


_BY_NAME: dict[type, dict[str, type]] = {}


def _pennylane_class(name: str, base: type) -> type | None:
    table = _BY_NAME.get(base)
    if table is None or name not in table:  # classes appear as PennyLane modules load
        table = _BY_NAME[base] = _subclasses(base)
    return table.get(name)


def _class_key(cls: type, base: type) -> str:
    if cls.__module__.split(".")[0] == "pennylane" and _pennylane_class(cls.__name__, base) is cls:
        return cls.__name__
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve_class(key, base: type, where: str) -> type[Any]:
    kind = "operator" if base is Operator else "measurement"
    if not isinstance(key, str):
        raise ValueError(f"{where}: the {kind} name must be a string, got {excerpt(key)}")
    if ":" not in key:
        cls = _pennylane_class(key, base)
        if cls is None:
            raise ValueError(
                f"{where}: unknown {kind} {excerpt(key)}: PennyLane {qml.__version__} has no such "
                f"{kind} class (a newer or older PennyLane may, or the name is misspelt)"
            )
        return cls
    if key in _REGISTERED:
        cls = _REGISTERED[key]
    else:
        module_name, _, qualname = key.partition(":")
        if module_name.split(".")[0] not in _TRUSTED_PACKAGES:
            raise ValueError(
                f"{where}: {kind} class {excerpt(key)} is outside PennyLane and qstore_pl; call "
                "qstore_pl.circuits.register_operator(cls) before loading it"
            )
        try:
            found: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                found = getattr(found, part)
            cls = found
        except (ImportError, AttributeError) as err:
            raise ValueError(f"{where}: unknown {kind} class {excerpt(key)} ({err})") from err
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{where}: {excerpt(key)} is not a PennyLane {kind} class")
    return cls


def _default_flattening(cls: type[Any]) -> bool:
    return (
        cls._flatten is Operator._flatten
        and cls._unflatten.__func__ is Operator._unflatten.__func__
    )


# ----------------------------------------------------------------------------- encoding


class Encoder:
    """Turns operators, measurements and their values into JSON-able objects."""

    def __init__(self, symbols: bool = False):
        self.symbols = symbols

    def value(self, x, where: str):
        if x is None or isinstance(x, bool | str):
            return x
        if isinstance(x, Symbol):
            if not self.symbols:
                raise NotSerializable(
                    f"{where} is the placeholder {x!r}; bind values first or serialise "
                    "the ParametrizedCircuit with its to_json()"
                )
            return {"$": "symbol", "name": x.name, "index": list(x.index), "scale": x.scale}
        if isinstance(x, np.generic):
            return self._scalar(x, where)
        if isinstance(x, int):
            return x
        if isinstance(x, float):
            return x if math.isfinite(x) else {"$": "float", "v": repr(x)}
        if isinstance(x, complex):
            return {
                "$": "complex",
                "re": self.value(x.real, where),
                "im": self.value(x.imag, where),
            }
        if isinstance(x, Wires):
            return {"$": "wires", "v": [self.value(w, where) for w in x.labels]}
        if isinstance(x, Operator):
            return self.op(x)
        if isinstance(x, MeasurementProcess):
            return self.mp(x)
        if isinstance(x, type) and issubclass(x, Operator):
            return {"$": "opclass", "name": _class_key(x, Operator)}
        if isinstance(x, tuple):
            return {"$": "tuple", "v": [self.value(v, where) for v in x]}
        if isinstance(x, list):
            return [self.value(v, where) for v in x]
        if isinstance(x, dict):
            return {
                "$": "dict",
                "items": [[self.value(k, where), self.value(v, where)] for k, v in x.items()],
            }
        if isinstance(x, np.ndarray) and x.dtype == object:
            if self.symbols and holds_symbol(x):
                return {
                    "$": "symbols",
                    "shape": list(x.shape),
                    "items": [self.value(v, where) for v in x.flat],
                }
            raise NotSerializable(f"{where} is an object array (only numeric arrays are stored)")
        if qml.math.get_interface(x) in ("numpy", *_FRAMEWORK_INTERFACES) and hasattr(x, "shape"):
            return self._array(x, where)
        raise NotSerializable(f"{where} has type {type(x).__module__}.{type(x).__qualname__}")

    def _scalar(self, x: np.generic, where: str) -> dict:
        if x.dtype.kind not in "biufc":
            raise NotSerializable(f"{where} is a numpy scalar of dtype {x.dtype}")
        if x.dtype.kind in "biu" or x.dtype.name in _ITEM_EXACT:
            return {"$": "scalar", "dtype": x.dtype.name, "value": self.value(x.item(), where)}
        return {"$": "scalar", "dtype": x.dtype.name, "b64": _to_b64(np.asarray(x))}

    def _array(self, x, where: str) -> dict:
        interface = qml.math.get_interface(x)
        if qml.math.is_abstract(x):
            raise NotSerializable(
                f"{where} is an abstract tracer (inside jax.jit); it has no value"
            )
        requires_grad = interface != "numpy" and bool(qml.math.requires_grad(x))
        if isinstance(x, ArrayBox):
            x = getval(x)
        array = np.asarray(qml.math.to_numpy(x))
        if array.dtype.kind not in "biufc":
            raise NotSerializable(f"{where} is an array of dtype {array.dtype}")
        out: dict[str, Any] = {"$": "array", "dtype": array.dtype.name, "shape": list(array.shape)}
        if array.ndim == 0 and (array.dtype.kind in "biu" or array.dtype.name in _ITEM_EXACT):
            out["value"] = self.value(array.item(), where)
        else:
            out["b64"] = _to_b64(array)
        if interface != "numpy":
            out["interface"] = interface
            if requires_grad:
                out["requires_grad"] = True
        return out

    def op(self, op: Operator) -> dict:
        cls = type(op)
        where = f"a parameter of {op.name}"
        try:
            data, meta = op._flatten()
            out: dict[str, Any] = {"op": _class_key(cls, Operator)}
            if _default_flattening(cls):
                wires, hyper = meta
                out["wires"] = [self.value(w, "a wire label") for w in wires.labels]
                out["data"] = [self.value(p, where) for p in data]
                if hyper:
                    out["hyper"] = {
                        k: self.value(v, f"hyperparameter {k!r} of {op.name}") for k, v in hyper
                    }
            else:
                out["data"] = [self.value(p, where) for p in data]
                out["meta"] = self.value(meta, f"the metadata of {op.name}")
        except NotSerializable as err:
            raise NotSerializable(err.detail, err.op or op) from None
        return out

    def mp(self, mp: MeasurementProcess) -> dict:
        if mp.mv is not None:
            raise NotSerializable(
                f"{type(mp).__name__} measures mid-circuit measurement values, which this "
                "format does not store",
                mp,
            )
        data, meta = mp._flatten()
        out: dict[str, Any] = {"mp": _class_key(type(mp), MeasurementProcess)}
        try:
            out["data"] = [self.value(p, f"the data of {type(mp).__name__}") for p in data]
            if isinstance(meta, tuple) and all(
                isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                for item in meta
            ):
                out["kwargs"] = {k: self.value(v, f"{k!r} of {type(mp).__name__}") for k, v in meta}
            else:
                out["meta"] = self.value(meta, f"the metadata of {type(mp).__name__}")
        except NotSerializable as err:
            raise NotSerializable(err.detail, err.op or mp) from None
        return out


def _to_b64(array: np.ndarray) -> str:
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return base64.b64encode(little.tobytes()).decode("ascii")


# ----------------------------------------------------------------------------- decoding


class Decoder:
    """Rebuilds operators, measurements and values from their JSON form."""

    def __init__(self, symbols: bool = False):
        self.symbols = symbols

    def value(self, x, where: str):
        if x is None or isinstance(x, bool | str | int | float):
            return x
        if isinstance(x, list):
            return [self.value(v, where) for v in x]
        if not isinstance(x, dict):
            raise ValueError(f"{where}: unexpected JSON value {excerpt(x)}")
        if "op" in x:
            return self.op(x, where)
        if "mp" in x:
            return self.mp(x, where)
        kind = x.get("$")
        if kind == "float":
            if x.get("v") not in ("nan", "inf", "-inf"):
                raise ValueError(
                    f"{where}: a tagged float must be nan, inf or -inf, got {excerpt(x)}"
                )
            return float(x["v"])
        if kind == "complex":
            return complex(self._real(x, "re", where), self._real(x, "im", where))
        if kind == "scalar":
            dtype = _dtype(x, where)
            if "b64" in x:
                return _from_b64(x["b64"], dtype, (), where)[()]
            return dtype.type(self.value(_field(x, "value", where), where))
        if kind == "array":
            return self._array(x, where)
        if kind == "tuple":
            return tuple(self.value(v, where) for v in list_field(x, "v", where))
        if kind == "dict":
            items = list_field(x, "items", where)
            if not all(isinstance(i, list) and len(i) == 2 for i in items):
                raise ValueError(f"{where}: dict items must be [key, value] pairs")
            return {self.value(k, where): self.value(v, where) for k, v in items}
        if kind == "wires":
            return Wires([self.value(w, where) for w in list_field(x, "v", where)])
        if kind == "opclass":
            return _resolve_class(_field(x, "name", where), Operator, where)
        if kind in ("symbol", "symbols") and not self.symbols:
            raise ValueError(
                f"{where}: the circuit holds Symbol placeholders; load it with "
                "ParametrizedCircuit.from_json"
            )
        if kind == "symbol":
            try:
                return Symbol(
                    _field(x, "name", where), _field(x, "index", where), x.get("scale", 1.0)
                )
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: bad symbol {excerpt(x)}: {err}") from err
        if kind == "symbols":
            shape = tuple(list_field(x, "shape", where))
            items = [self.value(v, where) for v in list_field(x, "items", where)]
            if len(items) != math.prod(shape) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items
            ):
                raise ValueError(
                    f"{where}: a symbol array of shape {shape} needs that many Symbols or reals"
                )
            array = np.empty(len(items), dtype=object)
            array[:] = items
            return array.reshape(shape)
        raise ValueError(f"{where}: unknown tagged value kind {excerpt(kind)} in {excerpt(x)}")

    def _real(self, x: dict, key: str, where: str) -> float:
        value = self.value(_field(x, key, where), where)
        if not isinstance(value, numbers.Real):
            raise ValueError(
                f"{where}: {key!r} of a complex number must be real, got {excerpt(value)}"
            )
        return float(value)

    def _array(self, x: dict, where: str):
        dtype = _dtype(x, where)
        shape = tuple(list_field(x, "shape", where))
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"{where}: bad array shape {excerpt(shape)}")
        if "b64" in x:
            array = _from_b64(x["b64"], dtype, shape, where)
        elif shape == ():
            array = np.array(self.value(_field(x, "value", where), where), dtype=dtype)
        else:
            raise ValueError(f"{where}: an array needs 'b64' data")
        interface = x.get("interface", "numpy")
        return _to_interface(array, interface, bool(x.get("requires_grad", False)), where)

    def op(self, d: dict, where: str) -> Operator:
        if not isinstance(d, dict) or "op" not in d:
            raise ValueError(f"{where}: an operator must be an object with an 'op' field")
        cls = _resolve_class(d["op"], Operator, where)
        where = f"{where} ({d['op']})"
        data = tuple(self.value(p, where) for p in list_field(d, "data", where))
        _check_parameters(data, where)
        if "meta" in d:
            meta = self.value(d["meta"], where)
        else:
            wires = Wires([self.value(w, where) for w in list_field(d, "wires", where)])
            hyper = d.get("hyper", {})
            if not isinstance(hyper, dict):
                raise ValueError(f"{where}: 'hyper' must be an object")
            meta = (wires, tuple((k, self.value(v, where)) for k, v in hyper.items()))
        if issubclass(cls, qml.StatePrep):
            # builds (and may pad to) a dense vector of 2**wires amplitudes
            width = max((len(w) for w in _wires_in(meta)), default=0)
            current_limits().check("max_state_wires", width, f"{where}: wires of the state")
        try:
            with qml.QueuingManager.stop_recording():
                return cls._unflatten(data, meta)
        except Exception as err:
            raise ValueError(f"{where}: cannot rebuild the operator: {str(err)[:300]}") from err

    def mp(self, d: dict, where: str) -> MeasurementProcess:
        if not isinstance(d, dict) or "mp" not in d:
            raise ValueError(f"{where}: a measurement must be an object with an 'mp' field")
        cls = _resolve_class(d["mp"], MeasurementProcess, where)
        where = f"{where} ({d['mp']})"
        data = tuple(self.value(p, where) for p in list_field(d, "data", where))
        if "kwargs" in d:
            if not isinstance(d["kwargs"], dict):
                raise ValueError(f"{where}: 'kwargs' must be an object")
            meta = tuple((k, self.value(v, where)) for k, v in d["kwargs"].items())
        else:
            meta = self.value(_field(d, "meta", where), where)
        try:
            with qml.QueuingManager.stop_recording():
                return cls._unflatten(data, meta)
        except Exception as err:
            raise ValueError(f"{where}: cannot rebuild the measurement: {str(err)[:300]}") from err


def _check_parameters(data: tuple, where: str) -> None:
    """Operator parameters are numbers, numeric arrays, tensors or (for composite
    operators) operators: anything else would build e.g. ``RX('abc')``."""
    for i, value in enumerate(data):
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, list | tuple):
                stack += item
            elif isinstance(item, str | bytes | dict | Wires | type | MeasurementProcess):
                raise ValueError(
                    f"{where}: parameter {i} is {excerpt(item)} (a {type(item).__name__}); "
                    "operator parameters must be numbers or numeric arrays"
                )


def _wires_in(meta):
    """The ``Wires`` objects inside an operator's metadata."""
    stack = [meta]
    while stack:
        item = stack.pop()
        if isinstance(item, Wires):
            yield item
        elif isinstance(item, list | tuple):
            stack += item


def _check_nesting(value, max_depth: int) -> None:
    """Raise when JSON lists and objects nest deeper than ``max_depth`` (checked
    without recursion, so any depth gives this error rather than a RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            current_limits().check("max_nesting", depth, "the circuit's JSON nesting depth")
        stack += [(child, depth + 1) for child in children]


def _field(d: dict, key: str, where: str):
    if key not in d:
        raise ValueError(f"{where}: missing field {key!r} in {excerpt(d)}")
    return d[key]


def list_field(d: dict, key: str, where: str) -> list:
    """The list stored under ``key`` in ``d``; a clear error (naming ``where``) otherwise."""
    value = _field(d, key, where)
    if not isinstance(value, list):
        raise ValueError(f"{where}: field {key!r} must be a list, got {excerpt(value)}")
    return value


def _dtype(x: dict, where: str) -> np.dtype:
    try:
        dtype = np.dtype(_field(x, "dtype", where))
    except TypeError as err:
        raise ValueError(f"{where}: unknown dtype {excerpt(x.get('dtype'))}") from err
    if dtype.kind not in "biufc":
        raise ValueError(f"{where}: dtype {dtype} is not numeric")
    return dtype


def _from_b64(text, dtype: np.dtype, shape: tuple, where: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: array data is not valid base64") from err
    if len(raw) != dtype.itemsize * math.prod(shape):
        raise ValueError(
            f"{where}: array data has {len(raw)} bytes, shape {shape} of {dtype} needs "
            f"{dtype.itemsize * math.prod(shape)}"
        )
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _to_interface(array: np.ndarray, interface, requires_grad: bool, where: str):
    if interface == "numpy":
        return array
    if interface == "autograd":
        from pennylane import numpy as pnp

        return pnp.tensor(array, requires_grad=requires_grad)
    if interface not in _FRAMEWORK_INTERFACES:
        raise ValueError(f"{where}: unknown array interface {excerpt(interface)}")
    try:
        if interface == "torch":
            import torch

            return torch.tensor(array, requires_grad=requires_grad)
        if interface == "jax":
            import jax.numpy as jnp

            return jnp.asarray(array)
        import tensorflow as tf

        return tf.Variable(array) if requires_grad else tf.constant(array)
    except ImportError as err:
        raise ValueError(
            f"{where}: the parameter was stored as a {interface} tensor but {interface} "
            "cannot be imported; install it to load this circuit"
        ) from err


# ----------------------------------------------------------------------------- public API


def operator_to_dict(op: Operator, symbols: bool = False) -> dict:
    """The JSON-able form of one operator (see the module docstring).

    Raises
    ------
    ValueError
        If a parameter or hyperparameter has no JSON form (e.g. a function).
    """
    try:
        return Encoder(symbols).op(op)
    except NotSerializable as err:
        raise ValueError(not_serializable_message(err, op, op.name, decompose_hint=False)) from None


def operator_from_dict(d: dict, symbols: bool = False) -> Operator:
    """Rebuild an operator written by :func:`operator_to_dict`."""
    return Decoder(symbols).op(d, "operator")


def measurement_to_dict(mp: MeasurementProcess, symbols: bool = False) -> dict:
    """The JSON-able form of one measurement process."""
    try:
        return Encoder(symbols).mp(mp)
    except NotSerializable as err:
        raise ValueError(
            not_serializable_message(err, mp, type(mp).__name__, decompose_hint=False)
        ) from None


def measurement_from_dict(d: dict, symbols: bool = False) -> MeasurementProcess:
    """Rebuild a measurement process written by :func:`measurement_to_dict`."""
    return Decoder(symbols).mp(d, "measurement")


def not_serializable_message(
    err: NotSerializable, top: object, label: str, decompose_hint: bool
) -> str:
    """Error text for ``err`` raised while encoding ``top`` (described by ``label``)."""
    inner = err.op
    if inner is None or inner is top:
        where = label
    else:
        where = f"{getattr(inner, 'name', type(inner).__name__)} inside {label}"
    hint = (
        " Pass decompose=True to store its decomposition instead, or bind/replace the value."
        if decompose_hint
        else ""
    )
    return f"cannot serialise {where} to JSON: {err.detail}.{hint}"


def _encode_operations(tape: QuantumScript, encoder: Encoder, decompose: bool):
    """Encoded operations and the tape's trainable parameter indices after any
    decomposition (a decomposed operator's parameters are trainable when any of the
    original ones was)."""
    trainable = set(tape.trainable_params)
    encoded: list[dict] = []
    new_trainable: list[int] = []
    old = new = 0
    for i, op in enumerate(tape.operations):
        n = len(op.data)
        try:
            pieces = [(op, encoder.op(op))]
        except NotSerializable as err:
            if not decompose:
                raise ValueError(
                    not_serializable_message(
                        err, op, f"{op.name} (operations[{i}])", decompose_hint=True
                    )
                ) from None
            pieces = _decomposed(op, encoder, 1)
        if len(pieces) == 1 and pieces[0][0] is op:
            new_trainable += [new + j for j in range(n) if old + j in trainable]
            new += n
        else:
            op_trainable = any(old + j in trainable for j in range(n))
            for piece, _ in pieces:
                k = len(piece.data)
                if op_trainable:
                    new_trainable += range(new, new + k)
                new += k
        encoded += [d for _, d in pieces]
        old += n
    # measurement (observable) parameters follow those of the operations
    new_trainable += [i + new - old for i in tape.trainable_params if i >= old]
    return encoded, new_trainable


def _decomposed(op: Operator, encoder: Encoder, depth: int) -> list[tuple[Operator, dict]]:
    if depth > _DECOMPOSE_DEPTH:
        raise ValueError(f"cannot serialise {op.name}: its decomposition is deeper than {depth}")
    try:
        with qml.QueuingManager.stop_recording():
            parts = op.decomposition()
    except qml.exceptions.DecompositionUndefinedError:
        raise ValueError(
            f"cannot serialise {op.name} to JSON: it holds values with no JSON form and has "
            "no decomposition"
        ) from None
    out: list[tuple[Operator, dict]] = []
    for part in parts:
        try:
            out.append((part, encoder.op(part)))
        except NotSerializable:
            out += _decomposed(part, encoder, depth + 1)
    return out


def tape_to_dict(tape: QuantumScript, decompose: bool = False) -> dict:
    """The JSON-able form of a tape: operations, measurements, shots, trainable parameters.

    Parameters
    ----------
    tape : QuantumScript
        The circuit. Parameters may be Python numbers, numpy arrays or autograd, torch,
        jax (not traced) or TensorFlow tensors; they are stored bit for bit with their dtype.
    decompose : bool
        Replace operators whose parameters or hyperparameters have no JSON form (e.g. a
        template holding a function) by their decomposition. A decomposed operator's
        parameters are trainable when any of the original ones was.

    Raises
    ------
    ValueError
        Naming the operator whose values cannot be stored (when ``decompose`` is False,
        or it has no decomposition).
    """
    if not isinstance(tape, QuantumScript):
        raise TypeError(f"tape_to_dict expects a QuantumScript (tape), got {type(tape).__name__}")
    encoder = Encoder()
    operations, trainable = _encode_operations(tape, encoder, decompose)
    measurements = []
    for i, mp in enumerate(tape.measurements):
        try:
            measurements.append(encoder.mp(mp))
        except NotSerializable as err:
            name = f"{type(mp).__name__} (measurements[{i}])"
            raise ValueError(
                not_serializable_message(err, mp, name, decompose_hint=False)
            ) from None
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "operations": operations,
        "measurements": measurements,
        "shots": _shots_to_json(tape.shots),
        "trainable_params": [int(i) for i in trainable],
    }


def _shots_to_json(shots: Shots):
    if not shots:
        return None
    return [[int(s.shots), int(s.copies)] for s in shots.shot_vector]


def _shots_from_json(value, where: str = "shots") -> Shots:
    if value is None:
        return Shots(None)
    if not isinstance(value, list) or not all(
        isinstance(p, list)
        and len(p) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in p)
        for p in value
    ):
        raise ValueError(
            f"{where}: expected null or a list of [shots, copies] pairs, got {excerpt(value)}"
        )
    return Shots([tuple(p) for p in value])


def check_header(d: Any, name: str, version: int) -> int:
    """Validate the ``format`` and ``version`` fields of a serialised object."""
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object for a {name}, got {type(d).__name__}")
    if d.get("format") != name:
        raise ValueError(
            f"not a {name!r} object (its 'format' field is {excerpt(d.get('format'))})"
        )
    found = d.get("version")
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise ValueError(
            f"{name}: the 'version' field must be a positive int, got {excerpt(found)}"
        )
    if found > version:
        raise ValueError(
            f"{name} version {found} is newer than this qstore_pl reads (up to {version}); "
            "upgrade qstore_pl to load it"
        )
    _check_nesting(d, current_limits().max_nesting)
    return found


def tape_from_dict(d: dict) -> QuantumScript:
    """Rebuild a tape written by :func:`tape_to_dict`.

    Raises
    ------
    ValueError
        For another format, a newer version, an unknown operator or measurement, or
        malformed fields; the message says where.
    """
    check_header(d, FORMAT_NAME, FORMAT_VERSION)
    decoder = Decoder()
    operations = [
        decoder.op(op, f"operations[{i}]")
        for i, op in enumerate(list_field(d, "operations", "circuit"))
    ]
    measurements = [
        decoder.mp(mp, f"measurements[{i}]")
        for i, mp in enumerate(list_field(d, "measurements", "circuit"))
    ]
    shots = _shots_from_json(d.get("shots"))
    trainable = d.get("trainable_params")
    tape = QuantumScript(operations, measurements, shots=shots)
    if trainable is not None:
        if not isinstance(trainable, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < tape.num_params
            for i in trainable
        ):
            raise ValueError(
                f"trainable_params must be a list of parameter indices below "
                f"{tape.num_params}, got {excerpt(trainable)}"
            )
        tape.trainable_params = trainable
    return tape


def tape_to_json(tape: QuantumScript, decompose: bool = False, indent: int | None = None) -> str:
    """:func:`tape_to_dict` as strict JSON text (no NaN tokens)."""
    return json.dumps(tape_to_dict(tape, decompose=decompose), allow_nan=False, indent=indent)


def tape_from_json(text: str | bytes) -> QuantumScript:
    """Rebuild a tape from :func:`tape_to_json` text."""
    return tape_from_dict(loads(text))


def loads(text: str | bytes) -> Any:
    """``json.loads`` with an error that says the text is not JSON."""
    if not isinstance(text, str | bytes | bytearray):
        raise TypeError(f"expected JSON text, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the circuit text is not valid JSON: {err}") from err
    except RecursionError:
        # json's own depth guard, near Python's recursion limit: past any sane bound
        limits = current_limits()
        raise InputLimitError(
            f"the circuit's JSON nests deeper than {sys.getrecursionlimit():,} levels; the "
            f"limit is {limits.max_nesting} (max_nesting, {limits.env_var('max_nesting')})"
        ) from None
