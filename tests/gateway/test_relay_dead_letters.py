"""The relay gives up on an event that fails for good (dead-lettered, kept for an operator,
no longer holding back its transaction) and never on one that waits for Temporal."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any, cast

import pytest
import sqlalchemy.exc
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from temporalio.service import RPCError, RPCStatusCode

from db.models import OcppTransactionEvent
from domain.contracts.session_signals import TRANSACTION_STARTED, TRANSACTION_STOPPED
from gateway.config import GatewayConfig
from gateway.event_store import EventStore
from gateway.events import STARTED, STOPPED
from gateway.relay import TransactionRelay
from gateway.relay_failures import Failure, classify
from gateway.store import GatewayStore
from gateway.workflow_signals import SignalFailed, WorkflowSignals, _failed
from tests.gateway.conftest import KEY_PEPPER
from tests.gateway.test_relay import event
from tests.gateway.test_sessions import names, signals_when, start_sink

pytestmark = pytest.mark.integration


class RefusingTemporal:
    """Temporal answering every StartTransaction update with an error of its own (or, with
    `unavailable`, not answering at all); signals go through."""

    def __init__(self, *, unavailable: bool) -> None:
        self.unavailable = unavailable
        self.sent: list[tuple[str, str]] = []
        self.down = False

    async def start_transaction(self, session_id: str, started: object) -> bool:
        raise SignalFailed("StartTransaction: INVALID_ARGUMENT", unavailable=self.unavailable)

    async def send(self, session_id: str, signal: str, arg: object) -> bool:
        self.sent.append((session_id, signal))
        return True

    async def probe(self) -> bool:
        return True


def relay_with(
    db_sessions: Any, temporal: RefusingTemporal, *, dead_after: int = 5, **overrides: Any
) -> TransactionRelay:
    config = GatewayConfig(
        instance_id="dead-letter-test",
        key_pepper=KEY_PEPPER,
        relay_retry_first_s=0.001,
        relay_retry_max_s=0.001,
        relay_dead_letter_after=dead_after,
        **overrides,
    )
    signals = cast(WorkflowSignals, temporal)
    return TransactionRelay(EventStore(db_sessions), GatewayStore(db_sessions), signals, config)


async def rows_of(db_sessions: Any, transaction_id: int) -> list[Any]:
    async with db_sessions() as session:
        result = await session.execute(
            select(
                OcppTransactionEvent.kind,
                OcppTransactionEvent.failures,
                OcppTransactionEvent.dead_at,
                OcppTransactionEvent.last_error,
            )
            .where(OcppTransactionEvent.transaction_id == transaction_id)
            .order_by(OcppTransactionEvent.id)
        )
        return list(result.all())


async def due_now(db_sessions: Any) -> None:
    """Skip the backoff (a few milliseconds here) without waiting on a clock."""
    async with db_sessions.begin() as session:
        await session.execute(
            update(OcppTransactionEvent).values(due_at=OcppTransactionEvent.created_at)
        )


async def test_a_refused_start_is_dead_lettered_and_its_stop_goes_on(db_sessions) -> None:
    temporal = RefusingTemporal(unavailable=False)
    relay = relay_with(db_sessions, temporal, dead_after=2)
    events = EventStore(db_sessions)
    await events.add(event(STARTED, "refused-start", 61))
    await events.add(event(STOPPED, "refused-start", 61))

    await relay.deliver_due()  # first refusal: tried again later
    [start, _stop] = await rows_of(db_sessions, 61)
    assert start.failures == 1 and start.dead_at is None
    assert temporal.sent == []  # the stop waits behind its start

    await due_now(db_sessions)
    await relay.deliver_due()  # second refusal: given up
    [start, _stop] = await rows_of(db_sessions, 61)
    assert start.dead_at is not None and "INVALID_ARGUMENT" in start.last_error

    await relay.deliver_due()
    assert temporal.sent == [("refused-start", TRANSACTION_STOPPED)]
    [start] = await rows_of(db_sessions, 61)  # the stop is delivered; the dead start is kept
    assert start.kind == STARTED and start.dead_at is not None
    counts = await events.counts()
    assert (counts.pending, counts.dead_lettered) == (0, 1)


async def test_an_event_waiting_for_temporal_is_never_dead_lettered(db_sessions) -> None:
    temporal = RefusingTemporal(unavailable=True)
    relay = relay_with(db_sessions, temporal, dead_after=1)
    await EventStore(db_sessions).add(event(STARTED, "temporal-down", 62))
    for _ in range(4):
        await relay.deliver_due()
        await due_now(db_sessions)
    [start] = await rows_of(db_sessions, 62)
    assert start.dead_at is None and start.failures == 0
    assert (await EventStore(db_sessions).counts()).pending == 1


async def test_an_undecodable_row_does_not_block_its_transaction(
    start_gateway, db_sessions, temporal_env, signal_worker
) -> None:
    session_id = uuid.uuid4().hex[:16]
    sink = await start_sink(temporal_env, signal_worker, session_id)
    events = EventStore(db_sessions)
    broken = event(STARTED, session_id, 63)
    await events.add(replace(broken, payload={"transaction_id": 63}))  # fields lost
    await events.add(event(STOPPED, session_id, 63))
    dead_before = REGISTRY.get_sample_value(
        "evpower_ocpp_relay_dead_lettered_total", {"kind": STARTED}
    )

    await start_gateway(
        relay_poll_s=0.1,
        relay_retry_first_s=0.05,
        relay_retry_max_s=0.2,
        relay_dead_letter_after=3,
    )
    received = await signals_when(sink, lambda got: TRANSACTION_STOPPED in names(got))

    assert TRANSACTION_STARTED not in names(received)
    # (The delivered stop's row may not be deleted yet.)
    [start] = [row for row in await rows_of(db_sessions, 63) if row.kind == STARTED]
    assert start.dead_at is not None and start.failures == 3
    assert start.last_error.startswith("KeyError")
    dead_after = REGISTRY.get_sample_value(
        "evpower_ocpp_relay_dead_lettered_total", {"kind": STARTED}
    )
    assert (dead_after or 0) - (dead_before or 0) == 1
    # The gauges an operator watches, counted from the shared table every poll.
    for _ in range(200):
        if _gauge("dead_lettered") == 1 and _gauge("pending") == 0:
            break
        await asyncio.sleep(0.05)
    assert (_gauge("dead_lettered"), _gauge("pending")) == (1, 0)


def _gauge(state: str) -> float | None:
    return REGISTRY.get_sample_value("evpower_ocpp_relay_events", {"state": state})


def test_failures_are_classified() -> None:
    invalid = RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b"")
    unavailable = RPCError("gone", RPCStatusCode.UNAVAILABLE, b"")
    deadline = RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b"")
    assert classify(_failed("signal", invalid)) is Failure.PERMANENT
    assert classify(_failed("signal", unavailable)) is Failure.TEMPORAL_DOWN
    assert classify(_failed("signal", deadline)) is Failure.TEMPORAL_DOWN
    gone = sqlalchemy.exc.OperationalError("SELECT 1", None, ConnectionRefusedError())
    assert classify(gone) is Failure.TRANSIENT
    assert classify(ConnectionRefusedError()) is Failure.TRANSIENT
    assert classify(KeyError("meter_stop_wh")) is Failure.PERMANENT
    assert classify(ValueError("unknown event kind")) is Failure.PERMANENT
