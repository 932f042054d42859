"""Transaction events: the charger messages a session workflow must receive, as rows.

A row of `ocpp_transaction_events` carries what the gateway would have sent to the workflow
(the StartTransaction update, the transaction_stopped or meter_sample signal) in JSON, so
any gateway's relay can send it later, exactly as it would have been sent at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.contracts.session_signals import MeterSample, TransactionStarted, TransactionStopped
from gateway.store import TransactionRow

STARTED = "started"
STOPPED = "stopped"
METER = "meter"
# A StopTransaction whose transaction the database does not hold (yet): its start waited in
# a gateway's memory during a database outage. Matched by the relay once the row appears.
ORPHAN_STOP = "orphan_stop"


@dataclass(frozen=True, slots=True)
class NewEvent:
    transaction_id: int
    station_id: str
    session_id: str  # the idTag: names the workflow `charging-{session_id}`
    kind: str
    payload: dict[str, Any]
    answered: str | None = None  # for STARTED: what the charger was told without the workflow


@dataclass(frozen=True, slots=True)
class PendingEvent:
    id: int
    transaction_id: int
    station_id: str
    session_id: str
    kind: str
    payload: dict[str, Any]
    answered: str | None
    attempts: int  # claims so far, this one included
    failures: int = 0  # permanent failures before this claim
    created_at: datetime | None = None


def started_of(row: TransactionRow) -> TransactionStarted:
    return TransactionStarted(
        transaction_id=row.id,
        station_id=row.station_id,
        connector_id=row.connector_id,
        meter_start_wh=row.meter_start_wh,
        started_at=row.started_at,
    )


def stopped_of(row: TransactionRow) -> TransactionStopped:
    """The stop as the row holds it: a repeated StopTransaction re-sends the first one."""
    assert row.meter_stop_wh is not None and row.stopped_at is not None
    return TransactionStopped(
        transaction_id=row.id,
        meter_stop_wh=row.meter_stop_wh,
        energy_wh=max(0, row.meter_stop_wh - row.meter_start_wh),
        stopped_at=row.stopped_at,
        reason=row.stop_reason,
    )


def session_of(row: TransactionRow) -> str:
    """The session a transaction's messages go to: the one it is linked to (a card-started
    session's id is not its idTag), else the idTag (a RemoteStart's tag is the session id)."""
    return row.session_id or row.id_tag


def started_event(row: TransactionRow, answered: str) -> NewEvent:
    payload = started_of(row)
    return NewEvent(
        row.id,
        row.station_id,
        row.id_tag,
        STARTED,
        {
            "transaction_id": payload.transaction_id,
            "station_id": payload.station_id,
            "connector_id": payload.connector_id,
            "meter_start_wh": payload.meter_start_wh,
            "started_at": payload.started_at.isoformat(),
        },
        answered,
    )


def stopped_event(row: TransactionRow) -> NewEvent:
    payload = stopped_of(row)
    return NewEvent(
        row.id,
        row.station_id,
        session_of(row),
        STOPPED,
        {
            "transaction_id": payload.transaction_id,
            "meter_stop_wh": payload.meter_stop_wh,
            "energy_wh": payload.energy_wh,
            "stopped_at": payload.stopped_at.isoformat(),
            "reason": payload.reason,
        },
    )


def meter_event(station_id: str, session_id: str, sample: MeterSample) -> NewEvent:
    return NewEvent(
        sample.transaction_id,
        station_id,
        session_id,
        METER,
        {
            "transaction_id": sample.transaction_id,
            "energy_wh": sample.energy_wh,
            "measured_at": sample.measured_at.isoformat(),
            "power_w": sample.power_w,
            "soc_percent": sample.soc_percent,
        },
    )


@dataclass(frozen=True, slots=True)
class OrphanStop:
    """A StopTransaction as the charger sent it, for a transaction not recorded yet."""

    meter_stop_wh: int
    stopped_at: datetime
    reason: str | None
    id_tag: str | None


def orphan_stop_event(station_id: str, transaction_id: int, stop: OrphanStop) -> NewEvent:
    # The session is unknown until the transaction's row names it (its idTag).
    return NewEvent(
        transaction_id,
        station_id,
        "",
        ORPHAN_STOP,
        {
            "transaction_id": transaction_id,
            "meter_stop_wh": stop.meter_stop_wh,
            "stopped_at": stop.stopped_at.isoformat(),
            "reason": stop.reason,
            "id_tag": stop.id_tag,
        },
    )


def orphan_of(event: PendingEvent) -> OrphanStop:
    data = event.payload
    return OrphanStop(
        meter_stop_wh=int(data["meter_stop_wh"]),
        stopped_at=datetime.fromisoformat(data["stopped_at"]),
        reason=data.get("reason"),
        id_tag=data.get("id_tag"),
    )


def decode(event: PendingEvent) -> TransactionStarted | TransactionStopped | MeterSample:
    """The update or signal argument the event stands for."""
    data = event.payload
    if event.kind == STARTED:
        return TransactionStarted(
            transaction_id=int(data["transaction_id"]),
            station_id=str(data["station_id"]),
            connector_id=int(data["connector_id"]),
            meter_start_wh=int(data["meter_start_wh"]),
            started_at=datetime.fromisoformat(data["started_at"]),
        )
    if event.kind == STOPPED:
        return TransactionStopped(
            transaction_id=int(data["transaction_id"]),
            meter_stop_wh=int(data["meter_stop_wh"]),
            energy_wh=int(data["energy_wh"]),
            stopped_at=datetime.fromisoformat(data["stopped_at"]),
            reason=data.get("reason"),
        )
    if event.kind == METER:
        return MeterSample(
            transaction_id=int(data["transaction_id"]),
            energy_wh=int(data["energy_wh"]),
            measured_at=datetime.fromisoformat(data["measured_at"]),
            power_w=data.get("power_w"),
            soc_percent=data.get("soc_percent"),
        )
    raise ValueError(f"unknown transaction event kind {event.kind!r}")
