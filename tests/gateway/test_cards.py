"""RFID cards at the charger, over a real websocket: Authorize answered from the database
(active card with enough balance, blocked, unknown, balance too low), RemoteStart tags still
accepted, and a refused StartTransaction that leaves no open transaction behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from ocpp.v16 import call
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Client, LedgerAccount, OcppRemoteStart, OcppTransaction, RfidCard
from tests.gateway.conftest import charger_session

pytestmark = pytest.mark.integration


async def add_card(
    db_sessions: async_sessionmaker[AsyncSession],
    id_tag: str,
    *,
    available_tyiyn: int,
    blocked: bool = False,
) -> str:
    """A client with an available balance and one card (as the cards API stores it)."""
    client_id = str(uuid.uuid4())
    async with db_sessions() as session, session.begin():
        session.add(Client(id=client_id, email=None))
        await session.flush()
        session.add(
            LedgerAccount(
                code=f"client:{client_id}:available",
                client_id=client_id,
                kind="available",
                balance_tyiyn=available_tyiyn,
            )
        )
        session.add(
            RfidCard(
                client_id=client_id,
                id_tag=id_tag,
                label="test",
                blocked_at=datetime.now(UTC) if blocked else None,
            )
        )
    return client_id


async def authorize(connected, id_tag: str) -> str:
    answer = await connected.charger.call(call.Authorize(id_tag=id_tag), suppress=False)
    return str(answer.id_tag_info["status"])


async def test_authorize_answers_each_card_from_the_database(
    start_gateway, add_station, db_sessions
):
    running = await start_gateway(card_min_balance_tyiyn=5_000)
    await add_station("EVP-C01")
    await add_card(db_sessions, "04A1B2C3D4", available_tyiyn=5_000)
    await add_card(db_sessions, "04FFEE0011", available_tyiyn=100_000, blocked=True)
    await add_card(db_sessions, "04BBBB0000", available_tyiyn=4_999)
    await add_card(db_sessions, "04CCCC0000", available_tyiyn=0)
    async with charger_session(running.url("EVP-C01"), "EVP-C01") as connected:
        assert await authorize(connected, "04A1B2C3D4") == "Accepted"
        # OCPP idTags compare without case: a reader sending lower-case hex is the same card.
        assert await authorize(connected, "04a1b2c3d4") == "Accepted"
        assert await authorize(connected, "04FFEE0011") == "Blocked"
        assert await authorize(connected, "DEADBEEF99") == "Invalid"
        assert await authorize(connected, "04BBBB0000") == "Invalid"  # below the minimum
        assert await authorize(connected, "04CCCC0000") == "Invalid"


async def test_the_minimum_balance_is_configurable(start_gateway, add_station, db_sessions):
    running = await start_gateway(card_min_balance_tyiyn=100)
    await add_station("EVP-C02")
    await add_card(db_sessions, "04DDDD0000", available_tyiyn=100)
    async with charger_session(running.url("EVP-C02"), "EVP-C02") as connected:
        assert await authorize(connected, "04DDDD0000") == "Accepted"


async def test_a_remote_start_tag_is_still_accepted_at_its_station_only(
    gateway, add_station, db_sessions
):
    await add_station("EVP-C03")
    await add_station("EVP-C04")
    session_tag = "abcdefgh23456723"  # a session id: lower-case base32
    async with db_sessions() as session, session.begin():
        session.add(
            OcppRemoteStart(
                id_tag=session_tag,
                station_id="EVP-C03",
                connector_id=1,
                energy_limit_wh=10_000,
                requested_at=datetime.now(UTC),
            )
        )
    async with charger_session(gateway.url("EVP-C03"), "EVP-C03") as connected:
        assert await authorize(connected, session_tag) == "Accepted"
    async with charger_session(gateway.url("EVP-C04"), "EVP-C04") as connected:
        assert await authorize(connected, session_tag) == "Invalid"


async def test_a_refused_start_leaves_no_open_transaction(gateway, add_station, db_sessions):
    await add_station("EVP-C05")
    await add_card(db_sessions, "04EEEE0000", available_tyiyn=100_000, blocked=True)
    async with charger_session(gateway.url("EVP-C05"), "EVP-C05") as connected:
        answers = []
        for number, tag in enumerate(["UNKNOWN0001", "UNKNOWN0002", "04EEEE0000"]):
            started = await connected.charger.call(
                call.StartTransaction(
                    connector_id=1,
                    id_tag=tag,
                    meter_start=1_000 * number,
                    timestamp=f"2026-01-01T10:0{number}:00Z",
                ),
                suppress=False,
            )
            answers.append(started.id_tag_info["status"])
    # Unknown tags are Invalid, a blocked card is Blocked (no session starts for it); an active
    # card's start is tests/charging/test_card_sessions.py's.
    assert answers == ["Invalid", "Invalid", "Blocked"]
    async with db_sessions() as session:
        still_open = await session.scalar(
            select(func.count())
            .select_from(OcppTransaction)
            .where(OcppTransaction.station_id == "EVP-C05", OcppTransaction.stopped_at.is_(None))
        )
        closed = (
            await session.scalars(
                select(OcppTransaction).where(OcppTransaction.station_id == "EVP-C05")
            )
        ).all()
    assert still_open == 0
    assert len(closed) == 3
    assert all(tx.stop_reason == "Refused" and tx.session_id is None for tx in closed)
    assert all(tx.meter_stop_wh == tx.meter_start_wh for tx in closed)


async def test_a_refused_start_is_closed_even_when_retried(gateway, add_station, db_sessions):
    await add_station("EVP-C06")
    start = call.StartTransaction(
        connector_id=2, id_tag="CAFE0001", meter_start=500, timestamp="2026-01-01T11:00:00Z"
    )
    async with charger_session(gateway.url("EVP-C06"), "EVP-C06") as connected:
        first = await connected.charger.call(start, suppress=False)
        again = await connected.charger.call(start, suppress=False)
    assert first.transaction_id == again.transaction_id
    assert again.id_tag_info["status"] == "Invalid"
    async with db_sessions() as session:
        tx = await session.get(OcppTransaction, first.transaction_id)
    assert tx is not None and tx.stopped_at is not None and tx.stop_reason == "Refused"
