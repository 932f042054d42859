"""The StationCommand workflow's contract with the operations API: its workflow id and type, the
operator's request and the answer it reports (an `Outcome` plus the charger's own answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

WORKFLOW_NAME = "StationCommand"


def station_command_workflow_id(station_id: str, command: str, request_id: str) -> str:
    return f"station-command-{station_id}-{command}-{request_id}"


class Outcome(StrEnum):
    ANSWERED = "answered"  # the charger answered (its status says yes or no)
    UNKNOWN_STATION = "unknown_station"
    OFFLINE = "offline"  # no gateway holds the charger (or none took the command)
    BUSY = "busy"  # a live session is on the connector and the operator did not force
    NO_ANSWER = "no_answer"  # sent, but the charger did not answer in time
    CALL_ERROR = "call_error"  # the charger answered with an OCPP CallError
    INVALID = "invalid"  # the parameters are not a valid OCPP payload


@dataclass(frozen=True)
class StationCommandRequest:
    station_id: str
    command: str  # the gateway's activity name: reset, unlock_connector, ...
    params: dict[str, str | int | None]
    operator: str  # the token's subject
    reason: str
    # ChangeAvailability to Inoperative: the connector (0: the whole station) whose live
    # sessions refuse the command unless `force`.
    guard_connector_id: int | None = None
    force: bool = False


@dataclass(frozen=True)
class StationCommandResult:
    outcome: str  # an Outcome
    status: str | None = None  # the charger's status (Accepted, Rejected, Unlocked, ...)
    response: dict[str, Any] = field(default_factory=dict)  # the charger's answer, OCPP JSON
    message: str = ""
    live_sessions: list[str] = field(default_factory=list)
