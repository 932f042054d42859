"""Why a relayed event did not reach its workflow, and whether trying again can help."""

from __future__ import annotations

import enum

from db.outage import database_unavailable
from gateway.workflow_signals import SignalFailed


class StopNotMatched(Exception):
    """An orphan stop's transaction is not in the database (yet)."""


class Failure(enum.Enum):
    # Temporal unreachable or too slow: every event waits for it, the probe says when.
    TEMPORAL_DOWN = "temporal_down"
    # The database dropped out mid-delivery: this event backs off and tries again, for ever.
    TRANSIENT = "transient"
    # Temporal refused the call (INVALID_ARGUMENT and the like), the row cannot be decoded,
    # or a bug: a few more tries in case it was misjudged, then the event is dead-lettered.
    PERMANENT = "permanent"
    # An orphan stop whose transaction row has not appeared: waited for up to
    # `relay_orphan_wait_s`, then dead-lettered for an operator.
    UNMATCHED = "unmatched"


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, StopNotMatched):
        return Failure.UNMATCHED
    if isinstance(exc, SignalFailed):
        return Failure.TEMPORAL_DOWN if exc.unavailable else Failure.PERMANENT
    if database_unavailable(exc):
        return Failure.TRANSIENT
    return Failure.PERMANENT


def describe(exc: BaseException) -> str:
    """The error as it is stored in `last_error` and logged: type and message, one line."""
    plain = isinstance(exc, SignalFailed | StopNotMatched)
    text = str(exc) if plain else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
