"""The relay: transaction events in the database reach their workflows in order per
transaction, also rows another gateway left claimed when it died."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.worker import Worker

from db.models import OcppTransactionEvent
from domain.contracts.charging import charging_workflow_id
from domain.contracts.session_signals import METER_SAMPLE, TRANSACTION_STARTED, TRANSACTION_STOPPED
from gateway.event_store import EventStore
from gateway.events import METER, STARTED, STOPPED, NewEvent
from tests.gateway.conftest import charger_session
from tests.gateway.test_sessions import names, signals_when, start_sink
from tests.gateway.workflows import StartRefuser

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC).isoformat()


def event(kind: str, session_id: str, transaction_id: int) -> NewEvent:
    payloads = {
        STARTED: {
            "transaction_id": transaction_id,
            "station_id": "EVP-701",
            "connector_id": 1,
            "meter_start_wh": 1000,
            "started_at": AT,
        },
        METER: {"transaction_id": transaction_id, "energy_wh": 250, "measured_at": AT},
        STOPPED: {
            "transaction_id": transaction_id,
            "meter_stop_wh": 1500,
            "energy_wh": 500,
            "stopped_at": AT,
            "reason": "Local",
        },
    }
    answered = "Accepted" if kind == STARTED else None
    return NewEvent(transaction_id, "EVP-701", session_id, kind, payloads[kind], answered)


async def pending(db_sessions) -> int:
    async with db_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OcppTransactionEvent)))


async def test_events_left_by_a_dead_gateway_are_delivered_in_order(
    start_gateway, db_sessions, temporal_env, signal_worker
):
    session_id = uuid.uuid4().hex[:16]
    sink = await start_sink(temporal_env, signal_worker, session_id)
    events = EventStore(db_sessions)
    for kind in (STARTED, METER, STOPPED):
        await events.add(event(kind, session_id, 41))
    # A gateway claimed the start and died before delivering it: its lease runs out.
    claimed = await events.claim(10, timedelta(seconds=1))
    assert [row.kind for row in claimed] == [STARTED]  # one per transaction, the oldest

    await start_gateway(relay_poll_s=0.2, relay_retry_first_s=0.1, relay_retry_max_s=0.5)
    received = await signals_when(sink, lambda got: TRANSACTION_STOPPED in names(got))

    assert names(received) == [TRANSACTION_STARTED, METER_SAMPLE, TRANSACTION_STOPPED]
    assert received[2][1]["meter_stop_wh"] == 1500
    for _ in range(200):
        if await pending(db_sessions) == 0:
            break
        await asyncio.sleep(0.05)
    assert await pending(db_sessions) == 0


async def test_an_event_for_a_closed_workflow_is_dropped(start_gateway, db_sessions):
    await EventStore(db_sessions).add(event(STOPPED, "no-such-session", 42))
    await start_gateway(relay_poll_s=0.2)
    for _ in range(200):
        if await pending(db_sessions) == 0:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the event for a workflow that does not exist was never dropped")


async def test_a_relayed_start_its_session_refuses_stops_the_charger(
    start_gateway, add_station, db_sessions, temporal_env
):
    """Told Accepted during a Temporal outage, refused by the session once relayed: the
    gateway holding the charger sends RemoteStopTransaction, so no unpaid energy flows."""
    await add_station("EVP-702")
    session_id = uuid.uuid4().hex[:16]
    queue = f"refuser-{uuid.uuid4().hex[:8]}"
    running = await start_gateway(relay_poll_s=0.2)
    async with Worker(temporal_env.client, task_queue=queue, workflows=[StartRefuser]):
        refuser = await temporal_env.client.start_workflow(
            StartRefuser.run, id=charging_workflow_id(session_id), task_queue=queue
        )
        async with charger_session(running.url("EVP-702"), "EVP-702") as connected:
            for _ in range(100):  # registered with the gateway
                if running.gateway.registry.get("EVP-702") is not None:
                    break
                await asyncio.sleep(0.05)
            start = event(STARTED, session_id, 43)
            await EventStore(db_sessions).add(replace(start, station_id="EVP-702"))
            running.gateway.relay.wake()
            await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 30)
        await refuser.terminate("test over")
    assert connected.charger.remote_stops == [43]


async def test_a_newer_sample_written_during_delivery_is_not_deleted_unsent(db_sessions):
    events = EventStore(db_sessions)
    session_id = uuid.uuid4().hex[:16]
    first = event(METER, session_id, 43)
    await events.add(first)
    [claimed] = [
        row for row in await events.claim(50, timedelta(minutes=1)) if row.transaction_id == 43
    ]
    # While the relay delivers the claimed sample, the charger reports a newer one.
    newer = replace(first, payload={**first.payload, "energy_wh": 900})
    await events.add(newer)

    await events.delivered(claimed)

    [again] = [
        row for row in await events.claim(50, timedelta(minutes=1)) if row.transaction_id == 43
    ]
    assert again.id == claimed.id and again.payload["energy_wh"] == 900
    await events.delivered(again)
    async with db_sessions() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(OcppTransactionEvent)
            .where(OcppTransactionEvent.transaction_id == 43)
        )
    assert left == 0
