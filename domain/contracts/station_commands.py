"""Command activities a gateway serves on its own task queue (`task_queues.gateway_task_queue`).

The ChargingSession workflow (worker) schedules these by name on the queue that
`station_connections` names for the station; the gateway serves them. A station that is not
connected, or does not answer in time, raises a non-retryable ApplicationError of type
`StationNotConnected` / `StationTimeout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REMOTE_START = "remote_start"
REMOTE_STOP = "remote_stop"
CHANGE_AVAILABILITY = "change_availability"
RESET = "reset"
UNLOCK_CONNECTOR = "unlock_connector"
GET_CONFIGURATION = "get_configuration"
CHANGE_CONFIGURATION = "change_configuration"
TRIGGER_MESSAGE = "trigger_message"
CLEAR_CACHE = "clear_cache"
DATA_TRANSFER = "data_transfer"

STATION_NOT_CONNECTED = "StationNotConnected"
STATION_TIMEOUT = "StationTimeout"


@dataclass(frozen=True)
class RemoteStartRequest:
    station_id: str
    connector_id: int
    id_tag: str  # the session id (<= 20 chars)
    energy_limit_wh: int  # the gateway stops the charger itself when this much was delivered


@dataclass(frozen=True)
class RemoteStopRequest:
    station_id: str
    transaction_id: int


@dataclass(frozen=True)
class StationCommand:
    """Generic command input: `params` are the OCPP payload fields in snake_case."""

    station_id: str
    params: dict[str, str | int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandResult:
    status: str  # the charger's answer, e.g. Accepted / Rejected
    # The charger's answer as OCPP JSON. `Any`, not `object`: Temporal's data converter
    # cannot decode into `object` and a workflow would fail on the result.
    payload: dict[str, Any] = field(default_factory=dict)


# The charger answered the command with a CALLERROR (details carry its code).
STATION_CALL_ERROR = "StationCallError"
# The command's parameters are not a valid OCPP payload; retrying cannot help.
INVALID_COMMAND = "InvalidCommand"
