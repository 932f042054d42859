"""OCPP 1.6 payload validation: the `ocpp` library's JSON schemas, compiled once per action.

The library validates each message with an interpreted jsonschema validator on a thread
pool; that is the gateway's known hot spot. Here every schema is compiled to Python code
(fastjsonschema) the first time its action is seen and runs inline: ~4 µs for a
MeterValues payload instead of ~85 µs plus a thread hop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp.v16
from ocpp.exceptions import (
    FormationViolationError,
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.v16.enums import Action

# OCPP 1.6 schemas leave integers unbounded; these are the columns they are stored in.
INT32 = 2**31 - 1
INT64 = 2**63 - 1

_SCHEMA_DIR = Path(ocpp.v16.__file__).resolve().parent / "schemas"
# Only real 1.6 action names reach the file system or the cache, whatever a charger sends.
KNOWN_ACTIONS = frozenset(action.value for action in Action)

Validator = Callable[[Any], Any]

# 1.6 names each CallError code; which schema rule maps to which follows the spec's wording:
# "incomplete" payload -> ProtocolError, wrong data type -> TypeConstraintViolation, a
# value outside its allowed set/range -> PropertyConstraintViolation, array cardinality ->
# OccurenceConstraintViolation (1.6's own spelling), anything structural -> FormationViolation.
_RULE_ERRORS: dict[str, type[OCPPError]] = {
    "required": ProtocolError,
    "type": TypeConstraintViolationError,
    "maxLength": TypeConstraintViolationError,
    "enum": PropertyConstraintViolationError,
    "minimum": PropertyConstraintViolationError,
    "maximum": PropertyConstraintViolationError,
    "format": PropertyConstraintViolationError,
    "multipleOf": PropertyConstraintViolationError,
    "minLength": PropertyConstraintViolationError,
    "pattern": PropertyConstraintViolationError,
    "minItems": OccurenceConstraintViolationError,
    "maxItems": OccurenceConstraintViolationError,
}


def parse_timestamp(value: str) -> datetime | None:
    """An OCPP timestamp as an aware datetime; chargers without a zone are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def moment(value: str) -> datetime:
    """parse_timestamp for a field the schema has already accepted (a second line of defence)."""
    parsed = parse_timestamp(value)
    if parsed is None:
        raise PropertyConstraintViolationError(details={"cause": f"bad timestamp {value!r}"})
    return parsed


def bounded(name: str, value: int, low: int, high: int) -> int:
    """`value` if it fits the column it goes to; 1.6 schemas put no bounds on integers."""
    if not low <= value <= high:
        raise PropertyConstraintViolationError(details={"cause": f"{name} {value} out of range"})
    return value


def _is_timestamp(value: str) -> bool:
    return parse_timestamp(value) is not None


class _Compiled:
    """Validators for one direction, compiled lazily and kept for the process lifetime."""

    def __init__(self, suffix: str) -> None:
        self._suffix = suffix
        self._validators: dict[str, Validator | None] = {}

    def get(self, action: str) -> Validator | None:
        try:
            return self._validators[action]
        except KeyError:
            if action not in KNOWN_ACTIONS:
                return None
        path = _SCHEMA_DIR / f"{action}{self._suffix}.json"
        validator: Validator | None = None
        if path.is_file():
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            # Format checks other than our own lenient timestamp parse would refuse
            # chargers in the field for cosmetic reasons (e.g. a missing zone suffix).
            validator = fastjsonschema.compile(
                schema, formats={"date-time": _is_timestamp, "uri": lambda _value: True}
            )
        self._validators[action] = validator
        return validator


_REQUESTS = _Compiled("")
_RESPONSES = _Compiled("Response")


def has_schema(action: str) -> bool:
    """True when `action` is an OCPP 1.6 action the library ships a schema for."""
    return _REQUESTS.get(action) is not None


def _check(validator: Validator | None, action: str, payload: Any) -> None:
    if validator is None:
        raise FormationViolationError(details={"cause": f"no OCPP 1.6 schema for {action}"})
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        error = _RULE_ERRORS.get(exc.rule or "", FormationViolationError)
        raise error(details={"cause": f"{action}: {exc.message}"}) from None


def validate_request(action: str, payload: Any) -> None:
    """Raise the OCPP error a charger should see when a Call payload breaks its schema."""
    _check(_REQUESTS.get(action), action, payload)


def validate_response(action: str, payload: Any) -> None:
    """Raise the OCPP error for a CallResult payload that breaks its schema."""
    _check(_RESPONSES.get(action), action, payload)
