"""Session records on the real database: admission checks, the connector claim under
concurrency, idempotent upserts that never reopen a finished session."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ledger import Ledger, LedgerMovement
from activities.sessions import AdmitSession, Admitted, OpenSession, SessionStore
from db.clients import ensure_client
from db.models import (
    ChargingSessionRecord,
    Connector,
    LedgerEntry,
    RfidCard,
    Station,
    StationConnection,
)
from domain.cards import CardInUse
from domain.contracts.session_record import SessionRecord
from domain.errors import InsufficientFunds, InvalidAmount
from domain.ledger import Operation
from domain.sessions import AlreadyCharging, ConnectorBusy, ConnectorNotFound

pytestmark = pytest.mark.integration


async def add_station(db_sessions: async_sessionmaker[AsyncSession], station_id: str) -> None:
    now = datetime.now(UTC)
    async with db_sessions() as session, session.begin():
        session.add(Station(id=station_id, price_tyiyn_per_kwh=1_500))
        await session.flush()
        session.add(Connector(station_id=station_id, connector_id=1, status="Preparing"))
        session.add(
            StationConnection(station_id=station_id, gateway_queue="gw-1", connected_at=now)
        )


def opening(session_id: str, client_id: str, station_id: str = "REC-1", connector_id: int = 1):
    return OpenSession(session_id, client_id, station_id, connector_id, 10_000)


async def test_concurrent_starts_on_one_connector_claim_it_once(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    store = SessionStore(db_sessions)
    results = await asyncio.gather(
        *(store.open(opening(f"race{n}", f"client-{n}")) for n in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1 and winners[0].gateway_queue == "gw-1"
    assert all(isinstance(r, ConnectorBusy) for r in results if isinstance(r, BaseException))


async def test_a_retried_admission_returns_the_first_answer(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    store = SessionStore(db_sessions)
    first = await store.open(opening("s1", "client-a"))
    again = await store.open(opening("s1", "client-a"))
    assert first == again
    with pytest.raises(AlreadyCharging):
        await store.open(opening("s2", "client-a"))
    with pytest.raises(ConnectorNotFound):
        await store.open(opening("s3", "client-a", connector_id=2))


async def test_record_upserts_are_idempotent_and_a_final_row_stays_final(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    store = SessionStore(db_sessions)
    await store.open(opening("s1", "client-a"))
    final = SessionRecord(
        session_id="s1",
        client_id="client-a",
        station_id="REC-1",
        connector_id=1,
        state="completed",
        reserved_tyiyn=10_000,
        price_tyiyn_per_kwh=1_500,
        energy_wh=2_000,
        cost_tyiyn=3_000,
        refunded_tyiyn=7_000,
        transaction_id=5,
    )
    await store.record(final)
    await store.record(final)
    await store.record(replace(final, state="charging", cost_tyiyn=0, refunded_tyiyn=0))
    await store.discard("s1")  # only a pending claim can be discarded
    async with db_sessions() as session:
        row = await session.get(ChargingSessionRecord, "s1")
    assert row is not None
    assert (row.state, row.cost_tyiyn, row.refunded_tyiyn) == ("completed", 3_000, 7_000)
    # The connector is free again for the next driver.
    assert (await store.open(opening("s2", "client-b"))).price_tyiyn_per_kwh == 1_500


async def test_the_row_holds_the_record_written_and_the_limit_admission_stored(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    store = SessionStore(db_sessions)
    await store.open(opening("s1", "client-a"))  # 10_000 tyiyn at 1_500 per kWh
    async with db_sessions() as session:
        pending = await session.get(ChargingSessionRecord, "s1")
    assert pending is not None and pending.energy_limit_wh == 6_666
    charging = SessionRecord(
        session_id="s1",
        client_id="client-a",
        station_id="REC-1",
        connector_id=1,
        state="charging",
        reserved_tyiyn=10_000,
        price_tyiyn_per_kwh=1_500,
        energy_limit_wh=6_666,
        transaction_id=7,
        started_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    )
    await store.record(charging)
    async with db_sessions() as session:
        row = await session.get(ChargingSessionRecord, "s1")
    assert row is not None and row.to_record() == charging
    # A record scheduled by a worker from before the limit was stored carries none: the
    # stored limit stays.
    await store.record(replace(charging, energy_limit_wh=0, energy_wh=100))
    async with db_sessions() as session:
        row = await session.get(ChargingSessionRecord, "s1")
    assert row is not None and (row.energy_limit_wh, row.energy_wh) == (6_666, 100)


async def _fund(db_sessions: async_sessionmaker[AsyncSession], client_id: str, amount: int) -> None:
    await Ledger(db_sessions).apply(
        Operation.CREDIT_TOPUP,
        LedgerMovement(f"topup:{client_id}", client_id, amount, provider="SIMULATED"),
    )


async def _row_and_entries(
    db_sessions: async_sessionmaker[AsyncSession], session_id: str
) -> tuple[ChargingSessionRecord | None, list[tuple[str, int]]]:
    async with db_sessions() as session:
        row = await session.get(ChargingSessionRecord, session_id)
        entries = (
            await session.execute(
                select(LedgerEntry.op_key, LedgerEntry.amount_tyiyn).where(
                    LedgerEntry.reference == session_id
                )
            )
        ).all()
    return row, [(op_key, amount) for op_key, amount in entries]


async def test_admission_writes_the_row_and_its_hold_together_and_a_retry_changes_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    await _fund(db_sessions, "client-a", 30_000)
    store = SessionStore(db_sessions)
    first = await store.admit(AdmitSession("s1", "client-a", "REC-1", 1, 10_000))
    again = await store.admit(AdmitSession("s1", "client-a", "REC-1", 1, 10_000))
    assert first == again == Admitted(10_000, 1_500, 6_666, "gw-1", first.max_power_w)
    row, entries = await _row_and_entries(db_sessions, "s1")
    assert row is not None and (row.state, row.reserved_tyiyn, row.energy_limit_wh) == (
        "pending",
        10_000,
        6_666,
    )
    assert entries == [("reserve:s1", 10_000)]  # the op_key of the two-step admission
    balance = await Ledger(db_sessions).balance("client-a")
    assert (balance.available_tyiyn, balance.held_tyiyn) == (20_000, 10_000)


async def test_a_refused_admission_writes_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    await _fund(db_sessions, "client-a", 5_000)
    store = SessionStore(db_sessions)
    with pytest.raises(InsufficientFunds):
        await store.admit(AdmitSession("poor", "client-a", "REC-1", 1, 10_000))
    with pytest.raises(InvalidAmount, match="buys no energy"):
        await store.admit(AdmitSession("tiny", "client-a", "REC-1", 1, 1))
    for session_id in ("poor", "tiny"):
        assert await _row_and_entries(db_sessions, session_id) == (None, [])
    # The connector is still free: a start that can pay takes it.
    await store.admit(AdmitSession("rich", "client-a", "REC-1", 1, 5_000))
    with pytest.raises(ConnectorBusy):
        await store.admit(AdmitSession("late", "client-b", "REC-1", 1, 1_000))
    assert await _row_and_entries(db_sessions, "late") == (None, [])


async def test_a_card_admission_reserves_what_the_balance_holds_and_the_row_says_so(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_station(db_sessions, "REC-1")
    await add_station(db_sessions, "REC-2")
    await _fund(db_sessions, "client-c", 4_000)
    async with db_sessions() as session, session.begin():
        await ensure_client(session, "client-c")
        session.add(RfidCard(client_id="client-c", id_tag="04AA", label="test"))
    store = SessionStore(db_sessions)
    card = AdmitSession("c1", "client-c", "REC-1", 1, 10_000, id_tag="04AA", min_balance_tyiyn=1)
    admitted = await store.admit(card)
    assert (admitted.reserved_tyiyn, admitted.energy_limit_wh) == (4_000, 2_666)
    row, entries = await _row_and_entries(db_sessions, "c1")
    assert row is not None and row.reserved_tyiyn == 4_000 and row.card_id is not None
    assert entries == [("reserve:c1", 4_000)]
    with pytest.raises(CardInUse):  # one live session per card, on any charger
        await store.admit(replace(card, session_id="c2", station_id="REC-2"))
