"""Activity dataclasses filled from a database row or another dataclass by field name, so a
field added to both sides needs no hand-written copy (and a copy cannot forget one)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ResultT = TypeVar("ResultT", bound="DataclassInstance")


def copy_fields(result: type[ResultT], source: object, **named: Any) -> ResultT:
    """`result` from `source`'s attributes of the same names: `named` gives the fields the
    source spells otherwise (`topup_id=row.id`) or does not hold; a field with a default that
    the source lacks keeps its default."""
    values: dict[str, Any] = {}
    for field in fields(result):
        if not field.init:
            continue
        if field.name in named:
            values[field.name] = named[field.name]
        elif hasattr(source, field.name):
            values[field.name] = getattr(source, field.name)
        elif field.default is MISSING and field.default_factory is MISSING:
            raise TypeError(f"{type(source).__name__} has no {field.name} for {result.__name__}")
    return result(**values)
