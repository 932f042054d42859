"""What a connection does with a transaction message while PostgreSQL is down (docs/gateway.md,
*Durable at the edge*): the session's workflow takes it through Temporal directly, the rows
follow through the backlog once the database is back, and when Temporal cannot take it either
the charger gets InternalError and retries."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog
from ocpp.exceptions import InternalError

from domain.contracts.session_signals import (
    METER_SAMPLE,
    TRANSACTION_STARTED,
    TRANSACTION_STOPPED,
    MeterSample,
    TransactionStarted,
    TransactionStopped,
)
from gateway import metering, metrics
from gateway.context import GatewayContext
from gateway.energy_watch import EnergyWatch
from gateway.events import started_of
from gateway.store import TransactionRow
from gateway.transactions import RunningTx, TransactionCache
from gateway.workflow_signals import SignalFailed

log = structlog.get_logger("gateway")


async def start_transaction(
    ctx: GatewayContext,
    station_id: str,
    cache: TransactionCache,
    *,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    started_at: datetime,
) -> tuple[int, bool]:
    """PostgreSQL is down: a RemoteStart this gateway sent names the energy limit, a
    reserved id is the transactionId (the same for the charger's retries), the session
    decides through Temporal, and the row is written when the database is back. Without
    any of these the charger gets InternalError and retries."""
    sent = ctx.store.sent_remote_start(id_tag)
    known = sent is not None and (sent.station_id, sent.connector_id) == (
        station_id,
        connector_id,
    )
    key = (station_id, connector_id, id_tag, meter_start, started_at)
    transaction_id = ctx.offline_ids.take(key) if known else None
    if sent is None or transaction_id is None or not ctx.backlog.has_room():
        log.warning("StartTransaction: database unavailable", station_id=station_id)
        raise InternalError(details={"cause": "transaction store unavailable"})
    row = TransactionRow(
        transaction_id,
        station_id,
        connector_id,
        id_tag,
        None,
        meter_start,
        started_at,
        sent.energy_limit_wh,
        None,
        None,
        None,
    )
    try:
        accepted = await ctx.signals.start_transaction(id_tag, started_of(row))
    except SignalFailed as exc:
        metrics.SIGNALS.labels(TRANSACTION_STARTED, "failed").inc()
        raise InternalError(details={"cause": "transaction store unavailable"}) from exc
    metrics.SIGNALS.labels(TRANSACTION_STARTED, "accepted" if accepted else "refused").inc()
    stored = replace(row, session_id=id_tag if accepted else None)
    store = ctx.store
    ctx.backlog.add(f"transaction {transaction_id}", lambda: store.insert_transaction(stored))
    tx = RunningTx.of(stored)
    cache.remember(transaction_id, tx)
    log.warning(
        "transaction started while the database is down; written when it is back",
        station_id=station_id,
        transaction_id=transaction_id,
        session_id=stored.session_id,
    )
    return transaction_id, accepted


async def meter_values(
    ctx: GatewayContext,
    station_id: str,
    cache: TransactionCache | None,
    watch: EnergyWatch,
    *,
    connector_id: int,
    transaction_id: int | None,
    readings: list[metering.Reading],
    rows: list[dict[str, Any]],
) -> None:
    """PostgreSQL is down: acked only once the session's workflow has the sample; the
    rows are written when the database is back."""
    register = metering.latest_energy(readings)
    tx = None if cache is None else cache.cached(transaction_id, connector_id)
    if register is None or tx is None or tx.session_id is None or not tx.start_delivered:
        raise InternalError(details={"cause": "meter store unavailable"})
    if not ctx.backlog.has_room():
        raise InternalError(details={"cause": "meter store unavailable; backlog full"})
    latest = max(readings, key=lambda item: item.measured_at)
    sample = MeterSample(
        transaction_id=tx.id,
        energy_wh=max(0, register - tx.meter_start_wh),
        measured_at=latest.measured_at,
        power_w=latest.power_w,
        soc_percent=latest.soc_percent,
    )
    await watch.signal(tx.session_id, METER_SAMPLE, sample, tx.id, retryable=True)
    tx.last_signal_at = time.monotonic()
    ctx.backlog.add(f"meter values of {station_id}", lambda: ctx.store.insert_meter_values(rows))
    await watch.on_energy(tx, register, readings)


async def stop_transaction(
    ctx: GatewayContext,
    station_id: str,
    cache: TransactionCache | None,
    *,
    transaction_id: int,
    meter_stop: int,
    stopped_at: datetime,
    reason: str | None,
    transaction_data: list[dict[str, Any]] | None,
) -> None:
    """PostgreSQL is down: signal the workflow directly (this connection knows the
    transaction) and write the stop when the database is back. Neither: an error."""
    tx = None if cache is None else cache.cached(transaction_id, 0)
    if cache is None or tx is None or not ctx.backlog.has_room(2):
        raise InternalError(details={"cause": "transaction store unavailable"})
    stopped = TransactionStopped(
        transaction_id=tx.id,
        meter_stop_wh=meter_stop,
        energy_wh=max(0, meter_stop - tx.meter_start_wh),
        stopped_at=stopped_at,
        reason=reason,
    )
    try:
        if not tx.start_delivered and tx.started_at is not None:
            # The start still waits in the relay (the database is down, so it cannot go
            # from there now): the workflow ignores a stop of a transaction it lacks.
            started = TransactionStarted(
                transaction_id=tx.id,
                station_id=station_id,
                connector_id=tx.connector_id,
                meter_start_wh=tx.meter_start_wh,
                started_at=tx.started_at,
            )
            await ctx.signals.start_transaction(tx.id_tag, started)
            tx.start_delivered = True
        # A card-started session's id is not its idTag: the linked session first.
        await ctx.signals.send(tx.session_id or tx.id_tag, TRANSACTION_STOPPED, stopped)
    except SignalFailed as exc:
        metrics.SIGNALS.labels(TRANSACTION_STOPPED, "failed").inc()
        log.warning(
            "StopTransaction: neither database nor Temporal takes it",
            station_id=station_id,
            transaction_id=transaction_id,
        )
        raise InternalError(details={"cause": "transaction store unavailable"}) from exc
    metrics.SIGNALS.labels(TRANSACTION_STOPPED, "accepted").inc()
    store = ctx.store

    async def write_stop() -> None:
        await store.stop_transaction(
            station_id,
            transaction_id,
            meter_stop_wh=meter_stop,
            stopped_at=stopped_at,
            reason=reason,
        )

    ctx.backlog.add(f"stop of transaction {transaction_id}", write_stop)
    if transaction_data:
        readings = metering.readings(transaction_data)
        rows = metering.rows(readings, station_id, tx.connector_id, transaction_id)
        ctx.backlog.add(
            f"stop data of transaction {transaction_id}",
            lambda: store.insert_meter_values(rows),
        )
    cache.forget(transaction_id)
    log.warning(
        "transaction stopped while the database is down; stop signalled directly",
        station_id=station_id,
        transaction_id=transaction_id,
    )
