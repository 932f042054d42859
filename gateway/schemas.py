"""OCPP 1.6 payload validation: the `ocpp` library's JSON schemas, compiled once per action.

The library validates each message with an interpreted jsonschema validator on a thread
pool, the gateway's hot spot. Here every schema is compiled to Python code (fastjsonschema)
the first time its action is seen and runs inline, without the thread hop (the cost is in
docs/benchmarks.md).
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

from domain.identifiers import ID_TAG, has_control_characters

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
    """An OCPP timestamp as an aware datetime; chargers without a zone are taken as UTC.
    None also for a moment that has no UTC equivalent (year 1 at +01:00, year 9999 at -01:00):
    it would overflow where it is stored."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        return None
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


# --- what the 1.6 schemas leave open, closed here (issue: nothing the DB cannot store) ---
# Strings the schemas leave unbounded: a sampledValue (signed meter data, e.g. OCMF, is a
# few hundred characters; 2,500 is OCPP 2.0.1's limit for it), DataTransfer data, times.
MAX_FREE_TEXT = 2_500
MAX_TIMESTAMP_TEXT = 64
# Integers by field name, as wide as the column they go to; any other integer fits a BIGINT.
_INTEGER_BOUNDS = {
    "connectorId": (0, INT32),
    "transactionId": (-INT32 - 1, INT32),
}
_ID_TAG_FIELDS = frozenset({"idTag", "parentIdTag"})


def _harden(schema: Any, name: str = "") -> Any:
    """A copy of a 1.6 schema with a length on every string and a range on every integer,
    so an over-long value is the schema's TypeConstraintViolation and an out-of-range
    number its PropertyConstraintViolation, before any handler sees it."""
    if isinstance(schema, list):
        return [_harden(item, name) for item in schema]
    if not isinstance(schema, dict):
        return schema
    hardened = dict(schema)
    for key in ("items", "anyOf", "oneOf", "allOf"):
        if key in hardened:
            hardened[key] = _harden(hardened[key], name)  # array items keep the field's name
    for key in ("properties", "definitions"):
        named = hardened.get(key)
        if isinstance(named, dict):
            hardened[key] = {prop: _harden(sub, prop) for prop, sub in named.items()}
    if hardened.get("type") == "string" and "enum" not in hardened:
        limit = MAX_TIMESTAMP_TEXT if hardened.get("format") == "date-time" else MAX_FREE_TEXT
        hardened.setdefault("maxLength", limit)
    if hardened.get("type") == "integer":
        low, high = _INTEGER_BOUNDS.get(name, (-INT64 - 1, INT64))
        hardened.setdefault("minimum", low)
        hardened.setdefault("maximum", high)
    return hardened


def _check_text(action: str, value: Any, field: str) -> None:
    """No string anywhere in a payload holds NUL, a control character or a lone surrogate
    (PostgreSQL cannot store NUL, UTF-8 cannot carry a surrogate), and every idTag has the
    shape of domain.identifiers.ID_TAG (1.6: printable ASCII)."""
    if isinstance(value, str):
        if has_control_characters(value):
            raise PropertyConstraintViolationError(
                details={"cause": f"{action}: {field or 'a value'} holds a control character"}
            )
        if field in _ID_TAG_FIELDS and not ID_TAG.matches(value):
            raise PropertyConstraintViolationError(
                details={"cause": f"{action}: {field} must be {ID_TAG.description}"}
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(action, item, key)
    elif isinstance(value, list):
        for item in value:
            _check_text(action, item, field)


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
            schema = _harden(json.loads(path.read_text(encoding="utf-8-sig")))
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
    _check_text(action, payload, "")


def validate_request(action: str, payload: Any) -> None:
    """Raise the OCPP error a charger should see when a Call payload breaks its schema."""
    _check(_REQUESTS.get(action), action, payload)


def validate_response(action: str, payload: Any) -> None:
    """Raise the OCPP error for a CallResult payload that breaks its schema."""
    _check(_RESPONSES.get(action), action, payload)
