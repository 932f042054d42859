"""Who is an operator: the roles the operations API knows and where a token names them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum


class OperatorRole(StrEnum):
    """`admin` may do everything an `operator` may, and the money actions besides."""

    OPERATOR = "operator"
    ADMIN = "admin"


_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
MAX_DEPTH = 8


def check_claim_path(value: str) -> str:
    """A dotted path of claim names (`app_metadata.role`); ValueError says what is wrong."""
    path = value.strip()
    segments = path.split(".")
    if not path or len(segments) > MAX_DEPTH or not all(_SEGMENT.match(s) for s in segments):
        raise ValueError(
            "must be a dotted path of claim names such as app_metadata.role "
            f"(letters, digits, _ and -; at most {MAX_DEPTH} parts)"
        )
    return path


def claim_at(claims: Mapping[str, object], path: str) -> object:
    """The value at a dotted path in the claims, or None where any part is missing."""
    value: object = claims
    for segment in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def operator_role(claims: Mapping[str, object], path: str) -> OperatorRole | None:
    """The operator role the token carries at `path`; None for everyone else (a client)."""
    value = claim_at(claims, path)
    if isinstance(value, str):
        try:
            return OperatorRole(value)
        except ValueError:
            return None
    return None
