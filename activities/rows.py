"""Activity results copied from database rows: each dataclass field takes the row's attribute of
the same name, so a column added to a row and to its result needs no hand-written copy."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ResultT = TypeVar("ResultT", bound="DataclassInstance")


def from_row(result: type[ResultT], row: object, **named: Any) -> ResultT:
    """`result` from `row`: `named` gives the fields the row spells otherwise (`topup_id=row.id`)
    or that it does not hold; a field with a default that the row lacks keeps its default."""
    values: dict[str, Any] = {}
    for field in fields(result):
        if not field.init:
            continue
        if field.name in named:
            values[field.name] = named[field.name]
        elif hasattr(row, field.name):
            values[field.name] = getattr(row, field.name)
        elif field.default is MISSING and field.default_factory is MISSING:
            raise TypeError(f"{type(row).__name__} has no {field.name} for {result.__name__}")
    return result(**values)
