"""The idle report finds a transaction whose link to its session was lost: a start that
reached its workflow while a database outage held the link back (seen in the chaos soak: five
sessions charging for ever on connectors the charger reported Available)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ChargingSessionRecord, Client, Connector, OcppTransaction, Station
from gateway.store import GatewayStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def _transaction(
    db_sessions: async_sessionmaker[AsyncSession], id_tag: str, *, live_session: str | None
) -> int:
    async with db_sessions() as session, session.begin():
        session.add(Station(id="IDLE-LINK", price_tyiyn_per_kwh=1_500))
        session.add(Client(id="idle-link-client"))
        await session.flush()
        session.add(Connector(station_id="IDLE-LINK", connector_id=1))
        if live_session is not None:
            session.add(
                ChargingSessionRecord(
                    id=live_session,
                    client_id="idle-link-client",
                    station_id="IDLE-LINK",
                    connector_id=1,
                    state="charging",
                    price_tyiyn_per_kwh=1_500,
                    reserved_tyiyn=10_000,
                )
            )
        row = OcppTransaction(
            station_id="IDLE-LINK",
            connector_id=1,
            id_tag=id_tag,
            session_id=None,  # the link the outage lost
            meter_start_wh=1_000,
            started_at=T0,
        )
        session.add(row)
        await session.flush()
        return row.id


async def test_an_unlinked_transaction_of_a_live_session_is_that_sessions(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    session_id = "idlelinksession1"
    transaction_id = await _transaction(db_sessions, session_id, live_session=session_id)
    later = datetime.now(UTC) + timedelta(seconds=5)
    row = await GatewayStore(db_sessions).open_session_transaction("IDLE-LINK", 1, before=later)
    assert row is not None
    assert (row.id, row.session_id) == (transaction_id, session_id)


async def test_an_unlinked_transaction_of_no_live_session_is_nobodys(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _transaction(db_sessions, "someonescard0001", live_session=None)
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert (
        await GatewayStore(db_sessions).open_session_transaction("IDLE-LINK", 1, before=later)
        is None
    )
