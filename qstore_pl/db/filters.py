"""Metadata filters: one small language that every store understands.

A filter is a dict of field conditions that must all hold::

    {"backend": "lightning.qubit"}                 # equality
    {"backend": {"$in": ["ionq_qpu", "ionq_sim"]}}  # any of
    {"shots": {"$gte": 1000}, "cost": {"$lt": 1.0}}   # numeric ranges
    {"tags": "validation"}                         # a list field containing the value

Operators: ``$eq``, ``$in``, ``$gt``, ``$gte``, ``$lt``, ``$lte``. Values are strings,
integers, floats or booleans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qstore_pl.db.errors import FilterError

RANGE_OPERATORS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$in", *RANGE_OPERATORS)
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Condition:
    """One field condition: ``op`` is one of :data:`OPERATORS`."""

    field: str
    op: str
    value: Any


def parse_filter(spec: Mapping[str, Any] | None) -> list[Condition]:
    """Validate a filter dict and return its conditions (all must hold)."""
    if not spec:
        return []
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a dict of field conditions; got {type(spec).__name__}")
    conditions = []
    for field, condition in spec.items():
        if not isinstance(field, str) or field.startswith("$"):
            raise FilterError(
                f"filter keys must be metadata field names; got {field!r} "
                "(combine conditions by listing several fields in one dict)"
            )
        items = condition.items() if isinstance(condition, Mapping) else [("$eq", condition)]
        for op, value in items:
            conditions.append(_condition(field, op, value))
    return conditions


def _condition(field: str, op: str, value: Any) -> Condition:
    if op not in OPERATORS:
        raise FilterError(
            f"unsupported filter operator {op!r} on {field!r}; use one of {OPERATORS}"
        )
    if op == "$in":
        if not isinstance(value, list | tuple) or not value:
            raise FilterError(f"'$in' on {field!r} needs a non-empty list of values")
        if not all(isinstance(v, _SCALARS) for v in value):
            raise FilterError(f"'$in' on {field!r} takes strings, numbers or booleans")
        return Condition(field, op, list(value))
    if op in RANGE_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FilterError(f"{op!r} on {field!r} needs a number; got {value!r}")
        return Condition(field, op, value)
    if not isinstance(value, _SCALARS):
        raise FilterError(
            f"filter value for {field!r} must be a string, number or boolean; got {value!r}"
        )
    return Condition(field, op, value)


def to_pinecone(conditions: list[Condition]) -> dict[str, Any] | None:
    """Pinecone's filter syntax for the conditions."""
    if not conditions:
        return None
    clauses = [{c.field: {c.op: c.value}} for c in conditions]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
