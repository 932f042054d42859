"""A card's StartTransaction during a real Temporal outage (the dev server killed with
SIGKILL): the charger is told Invalid, the transaction row is closed, nothing is reserved, and
the refused stop waits in the relay for a session that might have started; once Temporal is
back the relay drops it (no session started) and the same card starts a session again."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from db.models import (
    ChargingSessionRecord,
    LedgerEntry,
    OcppTransaction,
    OcppTransactionEvent,
    RfidCard,
)
from domain.identifiers import card_session_id
from tests.edge.world import (
    INITIAL,
    TIMEOUT_S,
    add_station,
    eventually,
    fund,
    killable_temporal,
    running_stack,
    session_result,
    session_view,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TAG = "04C0FFEE01"


async def test_a_card_start_during_a_temporal_outage_is_invalid_and_reserves_nothing(
    db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    client_id = str(uuid.uuid4())
    station_id = f"TC-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with killable_temporal(tmp_path / "temporal") as temporal:
        client = await Client.connect(temporal.address)
        async with running_stack(db_sessions, client) as stack:
            await fund(stack, client_id)
            async with db_sessions() as session, session.begin():
                session.add(RfidCard(client_id=client_id, id_tag=TAG, label="card"))
            async with stack.station(station_id) as station:

                async def connector_reported() -> bool:
                    return station.connector(1).status == "Available" and station.booted

                await eventually(connector_reported, "the charger booted")
                temporal.kill()
                # Authorize is the database's: the card is fine; the start needs Temporal.
                assert await station.authorize(TAG) == "Accepted"
                tx = await station.present_card(TAG, authorize=False)
                assert tx is not None
                await station.wait_until(lambda: tx.id_tag_status is not None, TIMEOUT_S)
                assert tx.id_tag_status == "Invalid"
                assert tx.transaction_id is not None
                session_id = card_session_id(
                    station_id, 1, TAG, tx.meter_start_wh, datetime.fromisoformat(tx.started_at)
                )
                async with db_sessions() as session:
                    row = await session.get(OcppTransaction, tx.transaction_id)
                    assert row is not None and row.stopped_at is not None
                    events = (
                        await session.scalars(
                            select(OcppTransactionEvent.session_id).where(
                                OcppTransactionEvent.transaction_id == tx.transaction_id
                            )
                        )
                    ).all()
                assert events == [session_id]  # the refused stop, for a session that might be

                await temporal.start()

                async def relayed() -> bool:
                    async with db_sessions() as session:
                        left = await session.scalar(
                            select(OcppTransactionEvent.id).where(
                                OcppTransactionEvent.transaction_id == tx.transaction_id
                            )
                        )
                    return left is None

                await eventually(relayed, "the relay delivered (dropped) the refused stop")
                async with db_sessions() as session:
                    assert await session.get(ChargingSessionRecord, session_id) is None
                    moved = await session.scalar(
                        select(LedgerEntry.id).where(LedgerEntry.reference == session_id)
                    )
                assert moved is None

                # Temporal is back: the driver presents the card again until a session starts
                # (the first tries may still meet a worker reconnecting: Invalid, and whatever
                # such a session reserved is released when its refused stop is relayed).
                refused: list[str] = []
                accepted = None
                for _ in range(10):
                    again = await station.present_card(TAG, authorize=False)
                    assert again is not None
                    await station.wait_until(
                        lambda tx=again: tx.id_tag_status is not None,  # type: ignore[misc]
                        TIMEOUT_S,
                    )
                    attempt = card_session_id(
                        station_id,
                        1,
                        TAG,
                        again.meter_start_wh,
                        datetime.fromisoformat(again.started_at),
                    )
                    if again.id_tag_status == "Accepted":
                        accepted = attempt
                        break
                    refused.append(attempt)
                    await station.wait_for_stop(again, TIMEOUT_S)
                assert accepted is not None
                view = await session_view(client, accepted)
                assert view.state == "charging"

                async def only_the_accepted_session_holds() -> bool:
                    balance = await stack.ledger.balance(client_id)
                    return (balance.available_tyiyn, balance.held_tyiyn) == (
                        INITIAL - view.reserved_tyiyn,
                        view.reserved_tyiyn,
                    )

                await eventually(only_the_accepted_session_holds, "refused starts released")
                for session_id in refused:
                    try:
                        result = await session_result(client, session_id)
                    except RPCError as exc:  # never started: nothing to settle
                        assert exc.status is RPCStatusCode.NOT_FOUND
                        continue
                    assert (result.state, result.energy_wh, result.cost_tyiyn) in {
                        ("completed", 0, 0),
                        ("rejected", 0, 0),
                    }
