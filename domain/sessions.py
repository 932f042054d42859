"""Charging session states, stop reasons and the reasons a start is refused."""

from __future__ import annotations

from enum import StrEnum

from domain.errors import (
    Conflict,
    DomainError,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    NotFound,
)


class SessionState(StrEnum):
    PENDING = "pending"  # accepted, reserving and asking the charger to start
    STARTING = "starting"  # RemoteStart accepted, waiting for StartTransaction
    CHARGING = "charging"
    STOPPING = "stopping"  # RemoteStop sent, waiting for StopTransaction
    COMPLETED = "completed"
    FAILED_TO_START = "failed_to_start"
    CANCELLED = "cancelled"  # stopped by the driver before any energy flowed: fully released
    HUNG = "hung"  # stop never confirmed by the charger: fully released
    NEEDS_REVIEW = "needs_review"  # the ledger refused the settlement: an operator decides
    REVIEWED = "reviewed"  # was needs_review; an admin decided (review_resolutions)
    REJECTED = "rejected"  # the start was refused; only visibility shows it (no row is kept)


FINAL_STATES = frozenset(
    {
        SessionState.COMPLETED,
        SessionState.FAILED_TO_START,
        SessionState.CANCELLED,
        SessionState.HUNG,
        SessionState.NEEDS_REVIEW,
        SessionState.REVIEWED,
        SessionState.REJECTED,
    }
)
LIVE_STATES = frozenset(
    {SessionState.PENDING, SessionState.STARTING, SessionState.CHARGING, SessionState.STOPPING}
)
# The same states as the strings the database stores: one spelling for every query and row
# check (`state.in_(FINAL_STATE_VALUES)`, `record.state in FINAL_STATE_VALUES`).
FINAL_STATE_VALUES = tuple(sorted(state.value for state in FINAL_STATES))
LIVE_STATE_VALUES = tuple(sorted(state.value for state in LIVE_STATES))


class StopReason(StrEnum):
    USER = "user"
    CHARGER = "charger"
    LIMIT_REACHED = "limit_reached"
    TIME_CAP = "time_cap"
    NO_START = "no_start"
    START_REJECTED = "start_rejected"
    STATION_UNAVAILABLE = "station_unavailable"
    NO_STOP_CONFIRMATION = "no_stop_confirmation"


# Why a start is refused. Each is a DomainError, so api/ maps it to a status in one place
# (NotFound 404, Conflict 409, InsufficientFunds 402, InvalidAmount 422).


class StationNotFound(NotFound):
    code = "station_not_found"


class ConnectorNotFound(NotFound):
    code = "connector_not_found"


class StationOffline(Conflict):
    code = "station_offline"


class ConnectorBusy(Conflict):
    code = "connector_busy"


class ConnectorUnavailable(Conflict):
    code = "connector_unavailable"


class AlreadyCharging(Conflict):
    code = "already_charging"


class SessionNotFound(NotFound):
    code = "session_not_found"


# Errors that travel through Temporal by class name (ApplicationError.type).
START_REJECTIONS: dict[str, type[DomainError]] = {
    cls.__name__: cls
    for cls in (
        StationNotFound,
        ConnectorNotFound,
        StationOffline,
        ConnectorBusy,
        ConnectorUnavailable,
        AlreadyCharging,
        InsufficientFunds,
        InvalidAmount,
    )
}
# The ApplicationError type of an activity's permanent failure (activities/failures.py):
# data that can never be stored. A start that hits one is refused with InvalidInput.
DATA_REJECTED = "DataRejected"
START_REJECTIONS[DATA_REJECTED] = InvalidInput
