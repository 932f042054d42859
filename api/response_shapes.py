"""Response bodies that extend a domain dataclass (the session record, say) instead of
retyping its fields: pydantic dataclasses, so FastAPI documents and serialises them like
models, with every field of the answer required in the OpenAPI document."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, cast, dataclass_transform

import pydantic.dataclasses
from pydantic import ConfigDict, Field, TypeAdapter

T = TypeVar("T")

# Every field is always in the answer, defaults or not.
_CONFIG = ConfigDict(json_schema_serialization_defaults_required=True)


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field, Field)
)
def response_dataclass(cls: type[T]) -> type[T]:
    """Keyword-only, so a response may add required fields after the domain's defaulted ones."""
    shaped = pydantic.dataclasses.dataclass(frozen=True, kw_only=True, config=_CONFIG)(cls)
    return cast("type[T]", shaped)


def json_body(body: Any) -> Any:
    """`body` as the JSON-ready value FastAPI would send (for websockets and JSONResponse)."""
    kind = type(body)
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter.dump_python(body, mode="json")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
