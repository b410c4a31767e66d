"""Argument checks shared by the templates: finite values and array shapes."""

from __future__ import annotations

import numpy as np
from pennylane import math


def check_finite(template: str, name: str, value) -> None:
    """Raise if ``value`` holds NaN or infinity.

    Abstract values (inside ``jax.jit`` or a ``tf.function``) and symbol placeholders
    cannot be inspected and pass unchecked.
    """
    if math.is_abstract(value):
        return
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return  # symbolic placeholders (qstore_pl.circuits.Symbol): checked once bound
    bad = ~math.isfinite(value)
    if bool(math.any(bad)):
        count = int(math.sum(math.cast(bad, "int64")))
        raise ValueError(
            f"{template}: {name} contains {count} NaN or infinite value(s); "
            f"clean or impute the data (e.g. numpy.nan_to_num) before encoding it"
        )


def check_scalar(template: str, name: str, value) -> float:
    """``value`` as a finite Python float."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{template}: {name} must be a real number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{template}: {name} must be finite, got {value!r}")
    return number


def as_tensor(value):
    """``value`` as an array: lists become numpy arrays, integer dtypes become float64.

    Tensors of an ML framework keep their type, so gradients flow through them.
    """
    if isinstance(value, (list, tuple, int, float, complex)):
        value = np.asarray(value)
    name = str(math.get_dtype_name(value))
    if name.startswith(("int", "uint", "bool")):
        return math.cast(value, "float64")
    return value


def is_complex(value) -> bool:
    """Whether ``value`` has a complex dtype."""
    return "complex" in str(math.get_dtype_name(value))
