"""What the OCPP gateway tells a ChargingSession workflow: signal/update names and payloads.

The gateway sends these to workflow `charging-{id_tag}` (the idTag of a RemoteStart is the
session id). Every message is safe to receive twice: the workflow keys them by transaction.
`transaction_started` is an update, not a signal: its answer is the idTagInfo status the
gateway gives the charger (a session that gave up, is finishing, already has a transaction or
belongs to another connector answers Invalid, so nobody is billed for a foreign start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

TRANSACTION_STARTED = "transaction_started"
METER_SAMPLE = "meter_sample"
TRANSACTION_STOPPED = "transaction_stopped"
ENERGY_LIMIT_REACHED = "energy_limit_reached"
CONNECTOR_IDLE = "connector_idle"
STATION_CONNECTED = "station_connected"

# Answers of the transaction_started update: OCPP idTagInfo statuses.
START_ACCEPTED = "Accepted"
START_REFUSED = "Invalid"
# The update's validator fails with this type for a StartTransaction from another
# station or connector than the session's (an idTag replayed elsewhere).
FOREIGN_TRANSACTION = "ForeignTransaction"


@dataclass(frozen=True)
class TransactionStarted:
    transaction_id: int
    station_id: str
    connector_id: int
    meter_start_wh: int
    started_at: datetime


@dataclass(frozen=True)
class MeterSample:
    transaction_id: int
    energy_wh: int  # delivered since StartTransaction (register minus meterStart)
    measured_at: datetime
    power_w: int | None = None
    soc_percent: int | None = None


@dataclass(frozen=True)
class TransactionStopped:
    transaction_id: int
    meter_stop_wh: int
    energy_wh: int  # delivered: meterStop minus meterStart, never negative
    stopped_at: datetime
    reason: str | None = None  # the charger's OCPP stop reason


@dataclass(frozen=True)
class EnergyLimitReached:
    """The gateway saw the reservation's energy used up and sent RemoteStop itself."""

    transaction_id: int
    energy_wh: int
    remote_stop_status: str  # the charger's answer: Accepted / Rejected


@dataclass(frozen=True)
class ConnectorIdle:
    """The charger reported the transaction's connector idle (Available, Finishing) while the
    gateway still had the transaction open: its StopTransaction has not arrived (yet)."""

    transaction_id: int
    status: str  # the OCPP ChargePointStatus it reported
    reported_at: datetime


@dataclass(frozen=True)
class StationConnected:
    """The session's charger (re)connected: commands go to `gateway_queue` now, and a command
    waiting for the charger is sent at once."""

    station_id: str
    gateway_queue: str
    connected_at: datetime


# What a refused StartTransaction's `ocpp_transactions` row is closed with (not an OCPP
# reason: the charger did not stop it, EvPower closed it). A StopTransaction the charger
# sends for it later still records what the charger reports, once, for reconciliation.
REFUSED_STOP_REASON = "Refused"
