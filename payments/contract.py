"""Our reading of the O!Dengi contract where it is not confirmed, as configuration.

Public integrations of the merchant API disagree on the `status_pay` codes, and the provider's
documentation leaves the `date_life` format and the shape of the statusPayment answer open.
Each of these is a setting with today's reading as the default (see docs/payments.md), so a
merchant whose `evpower payments check` shows another reading changes configuration, not code.
Every value is validated when the settings are read; a bad one stops the process at start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from payments.provider import PayStatus

READINGS: dict[str, PayStatus] = {
    "awaiting": PayStatus.AWAITING,
    "paid": PayStatus.PAID,
    "cancelled": PayStatus.CANCELLED,
    "expired": PayStatus.CANCELLED,  # the invoice is dead either way
}

# Today's reading: 1 awaiting, 2 cancelled, 3 paid, plus the words the statusPayment answer
# has been seen to use. A code outside this table is "unreadable": review, never a guess.
DEFAULT_STATUS_CODES: dict[str, str] = {
    "1": "awaiting",
    "2": "cancelled",
    "3": "paid",
    "processing": "awaiting",
    "pending": "awaiting",
    "awaiting": "awaiting",
    "new": "awaiting",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "rejected": "cancelled",
    "expired": "expired",
    "approved": "paid",
    "paid": "paid",
    "success": "paid",
}

# Where statusPayment's `data` keeps each fact; "a|b" tries a, then b; "a.b" goes into objects.
DEFAULT_STATUS_PATHS: dict[str, str] = {
    "payments": "payments",  # a list of payment attempts; "" when the answer has none
    "payment_status": "status",
    "payment_trans_id": "trans_id",
    "payment_amount": "amount",
    "payment_currency": "currency",
    "status": "status_pay|status",
    "trans_id": "trans_id",
    "amount": "amount",
    "currency": "currency",
}

DEFAULT_DATE_LIFE_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_DATE_LIFE_TZ = "+06:00"  # Kyrgyzstan: UTC+6 all year, no DST
UNIX_FORMATS = ("unix", "unix_ms")

_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_PROBE = datetime(2031, 12, 30, 21, 47, 13, tzinfo=UTC)


def status_key(value: object) -> str:
    """A status as the table keys it: trimmed, lower case; 3, "3" and "3.0" are one code."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip().lower() if value is not None else ""
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text


def _json_object(value: object, what: str) -> Mapping[object, object]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ValueError(f"must be a JSON object of {what}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a JSON object of {what}")
    return value


def check_status_codes(value: object) -> dict[str, str]:
    table = _json_object(value, '"code": "awaiting|paid|cancelled|expired"')
    codes: dict[str, str] = {}
    for code, reading in table.items():
        key = status_key(code)
        if not key:
            raise ValueError("has an empty status code")
        if str(reading).strip().lower() not in READINGS:
            raise ValueError(f"maps {code!r} to {reading!r}; use one of {', '.join(READINGS)}")
        codes[key] = str(reading).strip().lower()
    if "paid" not in codes.values():
        raise ValueError("names no code that means paid")
    return codes


def check_status_paths(value: object) -> dict[str, str]:
    """Overrides of DEFAULT_STATUS_PATHS (the ones not named keep their default)."""
    table = _json_object(value, '"name": "path"')
    paths: dict[str, str] = {}
    for name, path in table.items():
        if name not in DEFAULT_STATUS_PATHS:
            raise ValueError(f"has unknown name {name!r}; known: {', '.join(DEFAULT_STATUS_PATHS)}")
        text = str(path).strip()
        alternatives = [part.strip() for part in text.split("|")] if text else []
        if any(not _PATH.fullmatch(part) for part in alternatives):
            raise ValueError(f"{name}: {path!r} is not a path like a.b|c")
        if not alternatives and name != "payments":
            raise ValueError(f"{name}: a path is required")
        paths[str(name)] = "|".join(alternatives)
    return paths


def parse_time_zone(value: str) -> tzinfo:
    text = value.strip()
    if text.upper() in {"UTC", "Z"}:
        return UTC
    offset = _OFFSET.fullmatch(text)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta > timedelta(hours=14) or int(minutes) >= 60:
            raise ValueError(f"{value!r} is not a UTC offset")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is neither +HH:MM, UTC nor a zone name") from None


def check_date_life_format(value: str) -> str:
    """A strftime format that keeps the time to the minute, or unix / unix_ms."""
    text = value.strip()
    if text in UNIX_FORMATS:
        return text
    if "%" not in text:
        raise ValueError(f"{value!r} is no strftime format (e.g. %Y-%m-%d %H:%M:%S) nor unix")
    naive = _PROBE.replace(tzinfo=None)
    try:
        back = datetime.strptime(naive.strftime(text), text)  # noqa: DTZ007 (naive on both sides)
    except ValueError:
        raise ValueError(f"{value!r} does not read back what it writes") from None
    if back not in {naive, naive.replace(second=0)}:
        raise ValueError(f"{value!r} loses the date or the time of day")
    return text


def check_time_zone(value: str) -> str:
    parse_time_zone(value)
    return value.strip()


# The contract's settings as validated types: OdengiContract and the ODENGI_* settings
# (runtime/settings.py) read them through these, so each rule is written once.
StatusCodes = Annotated[dict[str, str], BeforeValidator(check_status_codes)]
StatusPaths = Annotated[dict[str, str], BeforeValidator(check_status_paths)]
DateLifeFormat = Annotated[str, AfterValidator(check_date_life_format)]
DateLifeZone = Annotated[str, AfterValidator(check_time_zone)]


def _dig(data: Mapping[str, Any], path: str) -> object:
    """The first alternative of `path` that is present and not empty, else None."""
    for alternative in path.split("|") if path else []:
        value: object = data
        for part in alternative.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in (None, ""):
            return value
    return None


class OdengiContract(BaseModel):
    """The configurable reading. Build it with defaults, or from settings (validated)."""

    model_config = ConfigDict(frozen=True)

    status_codes: StatusCodes = Field(default_factory=lambda: dict(DEFAULT_STATUS_CODES))
    date_life_format: DateLifeFormat = DEFAULT_DATE_LIFE_FORMAT
    date_life_tz: DateLifeZone = DEFAULT_DATE_LIFE_TZ
    status_paths: StatusPaths = Field(default_factory=lambda: dict(DEFAULT_STATUS_PATHS))

    @field_validator("status_paths")
    @classmethod
    def _paths(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_STATUS_PATHS, **value}  # the ones not named keep their default

    def status_of(self, value: object) -> PayStatus | None:
        """The status a code means, or None when the table does not know it."""
        reading = self.status_codes.get(status_key(value))
        return READINGS[reading] if reading else None

    def date_life(self, expires_at: datetime) -> str:
        """An invoice's end of life as createInvoice's `date_life`."""
        if self.date_life_format == "unix":
            return str(int(expires_at.timestamp()))
        if self.date_life_format == "unix_ms":
            return str(int(expires_at.timestamp() * 1000))
        local = expires_at.astimezone(parse_time_zone(self.date_life_tz))
        return local.strftime(self.date_life_format)

    def read_date_life(self, text: str) -> datetime:
        """The inverse of `date_life` (the simulator reads what the client wrote)."""
        if self.date_life_format in UNIX_FORMATS:
            scale = 1000 if self.date_life_format == "unix_ms" else 1
            return datetime.fromtimestamp(int(text) / scale, UTC)
        naive = datetime.strptime(text, self.date_life_format)  # noqa: DTZ007 (zone set below)
        return naive.replace(tzinfo=parse_time_zone(self.date_life_tz))

    def field(self, data: Mapping[str, Any], name: str) -> object:
        return _dig(data, self.status_paths[name])


DEFAULT_CONTRACT = OdengiContract()
