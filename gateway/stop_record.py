"""What a StopTransaction writes in one database transaction: its `transactionData` samples
first, then what passes the stop on (a `stopped` relay event, or an orphan stop). The relay can
then never hand a session a stop whose samples its meter check would not find yet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from db.outage import database_unavailable
from gateway import metering
from gateway.event_store import insert_event
from gateway.events import stopped_event
from gateway.store import TransactionRow, add_meter_values

log = structlog.get_logger("gateway")

StopWrite = Callable[[AsyncConnection, TransactionRow], Awaitable[None]]


async def insert_samples(
    connection: AsyncConnection, station_id: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """In a savepoint: samples the database refuses cost the samples, never the stop."""
    if not rows:
        return
    try:
        async with connection.begin_nested():
            await add_meter_values(connection, rows)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        log.warning("StopTransaction data not stored", station_id=station_id, error=repr(exc))


def record_stop(
    station_id: str, transaction_id: int, readings: list[metering.Reading]
) -> StopWrite:
    """The `then` of GatewayStore.stop_transaction: samples on the transaction's connector,
    then the relay event."""

    async def write(connection: AsyncConnection, row: TransactionRow) -> None:
        samples = metering.rows(readings, station_id, row.connector_id, transaction_id)
        await insert_samples(connection, station_id, samples)
        await insert_event(connection, stopped_event(row))

    return write
