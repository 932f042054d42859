"""The period of an operator report: `from`/`to` as ISO dates or datetimes, half-open
[from, to); dates and naive times are Asia/Bishkek, where the network runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from api.errors import ApiError
from api.v1.receipt_service import LOCAL_ZONE

MAX_PERIOD = timedelta(days=366)
# Longest accepted text: an ISO datetime with microseconds and an offset.
MAX_BOUND_LENGTH = 40


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, included
    end: datetime  # aware, excluded


def parse_bound(name: str, text: str) -> datetime:
    """An aware datetime: a date is its local midnight; a naive time is local."""
    try:
        if len(text) == len("YYYY-MM-DD"):
            moment = datetime.combine(date.fromisoformat(text), time(), LOCAL_ZONE)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=LOCAL_ZONE)
        # Year 1 at +06:00 (or 9999 at -06:00) has no UTC instant Python can hand the database.
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            422,
            "invalid_period",
            f"`{name}` must be an ISO date (2026-11-01) or datetime (2026-11-01T08:00:00+06:00)",
        ) from None
    return moment


def parse_period(start: str, end: str) -> Period:
    period = Period(parse_bound("from", start), parse_bound("to", end))
    length = period.end - period.start
    if length <= timedelta(0):
        raise ApiError(422, "empty_period", "`from` must be before `to` (the period is [from, to))")
    if length > MAX_PERIOD:
        raise ApiError(422, "period_too_long", f"a report covers at most {MAX_PERIOD.days} days")
    return period
