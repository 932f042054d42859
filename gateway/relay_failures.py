"""Why a relayed event did not reach its workflow, and whether trying again can help."""

from __future__ import annotations

import enum

from db.outage import database_unavailable
from gateway.workflow_signals import SignalFailed


class Failure(enum.Enum):
    # Temporal unreachable or too slow: every event waits for it, the probe says when.
    TEMPORAL_DOWN = "temporal_down"
    # The database dropped out mid-delivery: this event backs off and tries again, for ever.
    TRANSIENT = "transient"
    # Temporal refused the call (INVALID_ARGUMENT and the like), the row cannot be decoded,
    # or a bug: a few more tries in case it was misjudged, then the event is dead-lettered.
    PERMANENT = "permanent"


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, SignalFailed):
        return Failure.TEMPORAL_DOWN if exc.unavailable else Failure.PERMANENT
    if database_unavailable(exc):
        return Failure.TRANSIENT
    return Failure.PERMANENT


def describe(exc: BaseException) -> str:
    """The error as it is stored in `last_error` and logged: type and message, one line."""
    text = str(exc) if isinstance(exc, SignalFailed) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
