"""A StopTransaction for a transaction the database does not hold yet (its start waited in a
gateway's memory during a database outage, and the charger moved on) is stored before it is
acknowledged, matched once the row appears, counted once however often it is sent, and
dead-lettered for an operator if the row never comes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call
from sqlalchemy import func, select

from db.models import OcppTransaction, OcppTransactionEvent
from domain.contracts.session_signals import TRANSACTION_STOPPED
from gateway.event_store import EventStore
from gateway.events import ORPHAN_STOP, OrphanStop, orphan_stop_event
from gateway.store import GatewayStore, TransactionRow
from tests.gateway.conftest import charger_session
from tests.gateway.test_relay_dead_letters import RefusingTemporal, due_now, relay_with, rows_of
from tests.gateway.test_sessions import names, signals_when, start_sink

pytestmark = pytest.mark.integration

STARTED_AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def stop(transaction_id: int, meter_stop: int = 1_800) -> call.StopTransaction:
    return call.StopTransaction(
        meter_stop=meter_stop,
        timestamp="2026-11-30T10:40:00Z",
        transaction_id=transaction_id,
        reason="Local",
    )


async def events_left(db_sessions: Any) -> int:
    async with db_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OcppTransactionEvent)))


async def test_a_stop_before_its_transaction_row_is_kept_and_delivered_once_it_appears(
    start_gateway, add_station, db_sessions, temporal_env, signal_worker
) -> None:
    await add_station("EVP-711")
    session_id = uuid.uuid4().hex[:16]
    sink = await start_sink(temporal_env, signal_worker, session_id)
    store = GatewayStore(db_sessions)
    # Another gateway gave this id to a StartTransaction while the database was down, told
    # the session through Temporal, and still holds the row in memory.
    [transaction_id] = await store.reserve_transaction_ids(1)
    running = await start_gateway(relay_poll_s=0.1, relay_retry_first_s=0.05, relay_retry_max_s=0.2)

    async with charger_session(running.url("EVP-711"), "EVP-711") as connected:
        # Sent twice (a retry with a new message id): one orphan, acked both times.
        await connected.charger.call(stop(transaction_id), suppress=False)
        await connected.charger.call(stop(transaction_id), suppress=False)
        [orphan] = await rows_of(db_sessions, transaction_id)
        assert orphan.kind == ORPHAN_STOP and orphan.dead_at is None

        # That gateway's held write lands: the relay matches the stop to it.
        await store.insert_transaction(
            TransactionRow(
                transaction_id,
                "EVP-711",
                1,
                session_id,
                session_id,
                1_000,
                STARTED_AT,
                None,
                None,
                None,
                None,
            )
        )
        received = await signals_when(sink, lambda got: TRANSACTION_STOPPED in names(got))
        stopped = dict(received)[TRANSACTION_STOPPED]
        assert (stopped["meter_stop_wh"], stopped["energy_wh"]) == (1_800, 800)
        for _ in range(200):
            if await events_left(db_sessions) == 0:
                break
            await asyncio.sleep(0.05)
        assert await events_left(db_sessions) == 0

        # A late copy with other figures changes nothing: the first stop stays.
        await connected.charger.call(stop(transaction_id, meter_stop=9_999), suppress=False)
    async with db_sessions() as session:
        row = await session.get(OcppTransaction, transaction_id)
    assert row is not None and row.meter_stop_wh == 1_800 and row.stop_reason == "Local"
    received = await sink.query("signals")
    assert {args["meter_stop_wh"] for name, args in received if name == TRANSACTION_STOPPED} == {
        1_800
    }


async def test_an_orphan_stop_whose_transaction_never_appears_is_dead_lettered(db_sessions) -> None:
    events = EventStore(db_sessions)
    orphan = OrphanStop(1_800, STARTED_AT, "Local", None)
    await events.add(orphan_stop_event("EVP-712", 71_201, orphan))

    await relay_with(db_sessions, RefusingTemporal(unavailable=False)).deliver_due()
    [waiting] = await rows_of(db_sessions, 71_201)
    assert waiting.dead_at is None and waiting.last_error.startswith("no transaction 71201")

    # Its wait is over (no gateway still holds the start): kept for an operator.
    await due_now(db_sessions)
    gave_up = relay_with(
        db_sessions, RefusingTemporal(unavailable=False), relay_orphan_wait_s=0.001
    )
    await gave_up.deliver_due()
    [dead] = await rows_of(db_sessions, 71_201)
    assert dead.dead_at is not None and dead.last_error.startswith("no transaction 71201")


async def test_an_orphan_stop_does_not_hold_back_another_stations_transaction(db_sessions) -> None:
    """Charger-local ids are not unique across stations: an orphan of one station waits
    alone, and a stop with the same id at another station is its own event."""
    events = EventStore(db_sessions)
    await events.add(orphan_stop_event("EVP-713", 71_301, OrphanStop(5, STARTED_AT, None, None)))
    await events.add(orphan_stop_event("EVP-714", 71_301, OrphanStop(9, STARTED_AT, None, None)))
    temporal = RefusingTemporal(unavailable=False)
    await relay_with(db_sessions, temporal).deliver_due()
    rows = await rows_of(db_sessions, 71_301)
    assert len(rows) == 2 and all(row.last_error.startswith("no transaction") for row in rows)
