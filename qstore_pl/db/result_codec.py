"""Results as JSON text: safe to read back from a shared store (no pickle), exact
(arrays keep dtype, shape and every bit)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np


def dumps(result: Any) -> str:
    """JSON text of a result: nested tuples, lists and dicts of arrays and numbers."""
    return json.dumps(_encode(result), separators=(",", ":"))


def loads(text: str) -> Any:
    """The result :func:`dumps` wrote."""
    return _decode(json.loads(text))


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"cannot cache a result array of dtype {array.dtype}")
        data = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()
        return {"nd": data, "dtype": array.dtype.str, "shape": list(array.shape)}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot cache a result of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "nd" in value:
        raw = base64.b64decode(value["nd"])
        array = np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        return array.copy() if array.ndim else array[()]
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    return {_decode(k): _decode(v) for k, v in value["dict"]}
