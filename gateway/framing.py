"""OCPP-J framing: parse and build CALL / CALLRESULT / CALLERROR frames, key case, timestamps."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import (
    FormationViolationError,
    GenericError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
)

from domain.identifiers import has_control_characters

CALL = 2
CALL_RESULT = 3
CALL_ERROR = 4

# A frame whose unique id cannot be read is answered with this id (OCPP 2.0.1 made it the
# rule; 1.6 is silent, and chargers at least log a CALLERROR they can see).
UNKNOWN_UNIQUE_ID = "-1"
# OCPP-J 1.6 says at most 36 characters (a GUID); a little slack for chargers that pad.
MAX_UNIQUE_ID_LENGTH = 64

_ERRORS_BY_CODE: dict[str, type[OCPPError]] = {
    error.code: error for error in OCPPError.__subclasses__()
}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class IncomingCall:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IncomingResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IncomingError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]

    def to_exception(self) -> OCPPError:
        error = _ERRORS_BY_CODE.get(self.code)
        if error is None:
            description = f"{self.code}: {self.description}"
            return GenericError(description=description, details=self.details)
        return error(description=self.description, details=self.details)


Incoming = IncomingCall | IncomingResult | IncomingError


class FrameError(Exception):
    """A frame that is not valid OCPP-J; `unique_id` is what the CALLERROR should carry."""

    def __init__(self, unique_id: str, error: OCPPError) -> None:
        super().__init__(error.details.get("cause", error.description))
        self.unique_id = unique_id
        self.error = error


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _number(text: str) -> int | float:
    # JSON has one number type: 1.0 is the integer 1 (a charger's `"connectorId": 1.0` must
    # not reach an integer column as a float); fractions stay floats.
    value = float(text)
    return int(value) if value.is_integer() else value


def _loads(raw: str | bytes) -> Any:
    """json.loads, strict: no NaN/Infinity, integral numbers as int."""
    return json.loads(raw, parse_float=_number, parse_constant=_refuse_constant)


def _readable_id(unique_id: object) -> bool:
    # The id is echoed in the answer: one with a lone surrogate could not even be sent.
    return (
        isinstance(unique_id, str)
        and 0 < len(unique_id) <= MAX_UNIQUE_ID_LENGTH
        and not has_control_characters(unique_id)
    )


def _printable(text: str) -> str:
    return "".join("\ufffd" if has_control_characters(ch) else ch for ch in text)


def _clean_text(value: Any) -> bool:
    """True when no string in `value` (keys included) holds a control character or surrogate."""
    if isinstance(value, str):
        return not has_control_characters(value)
    if isinstance(value, dict):
        return all(_clean_text(key) and _clean_text(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_clean_text(item) for item in value)
    return True


def parse_frame(raw: str | bytes) -> Incoming:
    """One websocket message as an OCPP-J frame, or FrameError with the CALLERROR to send."""
    try:
        message = _loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting depth
        raise FrameError(
            UNKNOWN_UNIQUE_ID, FormationViolationError(details={"cause": "frame is not JSON"})
        ) from None
    if not isinstance(message, list) or not message:
        raise FrameError(
            UNKNOWN_UNIQUE_ID, ProtocolError(details={"cause": "frame is not a JSON array"})
        )
    unique_id = message[1] if len(message) > 1 else None
    if not _readable_id(unique_id):
        raise FrameError(
            UNKNOWN_UNIQUE_ID, ProtocolError(details={"cause": "frame has no valid unique id"})
        )
    assert isinstance(unique_id, str)
    kind = message[0]
    if kind == CALL:
        if len(message) != 4 or not isinstance(message[2], str):
            raise _shape_error(unique_id, "CALL must be [2, id, action, payload]")
        if not isinstance(message[3], dict):
            raise _shape_error(unique_id, "CALL payload must be a JSON object")
        return IncomingCall(unique_id, message[2], message[3])
    if kind == CALL_RESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise _shape_error(unique_id, "CALLRESULT must be [3, id, payload]")
        return IncomingResult(unique_id, message[2])
    if kind == CALL_ERROR:
        if len(message) != 5 or not isinstance(message[2], str):
            raise _shape_error(unique_id, "CALLERROR must be [4, id, code, description, details]")
        details = message[4] if isinstance(message[4], dict) and _clean_text(message[4]) else {}
        # A charger's error text travels on to the workflow and the operator's API answer:
        # what no JSON encoder can write (a lone surrogate) or no log should hold goes here.
        return IncomingError(
            unique_id, _printable(message[2]), _printable(str(message[3])), details
        )
    raise FrameError(
        unique_id,
        PropertyConstraintViolationError(details={"cause": f"unknown MessageTypeId {kind!r}"}),
    )


def _shape_error(unique_id: str, cause: str) -> FrameError:
    return FrameError(unique_id, ProtocolError(details={"cause": cause}))


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL, unique_id, action, payload])


def result_frame(unique_id: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL_RESULT, unique_id, payload])


def error_frame(unique_id: str, error: OCPPError) -> str:
    details = error.details if isinstance(error.details, dict) else {}
    return _dumps([CALL_ERROR, unique_id, error.code, error.description, details])


# Key conversion is cached per key: payload keys come from a small fixed vocabulary once
# the schema has accepted them; the bound only guards against a misbehaving peer.
@lru_cache(maxsize=2048)
def snake_key(key: str) -> str:
    return str(next(iter(camel_to_snake_case({key: None}))))


@lru_cache(maxsize=2048)
def camel_key(key: str) -> str:
    return str(next(iter(snake_to_camel_case({key: None}))))


def to_snake(value: Any) -> Any:
    """camelCase OCPP JSON -> snake_case keyword arguments (recursively)."""
    if isinstance(value, dict):
        return {snake_key(key): to_snake(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_snake(item) for item in value]
    return value


def to_camel(value: Any) -> Any:
    """A call / call_result dataclass (or plain data) -> camelCase OCPP JSON without Nones."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            camel_key(key): to_camel(item) for key, item in vars(value).items() if item is not None
        }
    if isinstance(value, dict):
        return {camel_key(key): to_camel(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [to_camel(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


_now_cache: tuple[int, str] = (0, "")


def utc_now_text() -> str:
    """The current time as OCPP wants it: UTC, ISO 8601, `Z` suffix, second precision."""
    global _now_cache  # noqa: PLW0603 - one formatted string per second is shared by all
    second = int(time.time())
    if _now_cache[0] != second:
        _now_cache = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _now_cache[1]


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
