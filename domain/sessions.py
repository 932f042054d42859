"""Charging session states and stop reasons as the product names them."""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    PENDING = "pending"  # accepted, reserving and asking the charger to start
    STARTING = "starting"  # RemoteStart accepted, waiting for StartTransaction
    CHARGING = "charging"
    STOPPING = "stopping"  # RemoteStop sent, waiting for StopTransaction
    COMPLETED = "completed"
    FAILED_TO_START = "failed_to_start"
    HUNG = "hung"  # stop never confirmed by the charger: fully released


FINAL_STATES = frozenset({SessionState.COMPLETED, SessionState.FAILED_TO_START, SessionState.HUNG})


class StopReason(StrEnum):
    USER = "user"
    CHARGER = "charger"
    LIMIT_REACHED = "limit_reached"
    TIME_CAP = "time_cap"
    NO_START = "no_start"
    START_REJECTED = "start_rejected"
    STATION_UNAVAILABLE = "station_unavailable"
    NO_STOP_CONFIRMATION = "no_stop_confirmation"
