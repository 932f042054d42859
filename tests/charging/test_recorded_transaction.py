"""`recorded_transaction` on the real database: the gateway's StopTransaction first, else the
newest meter reading, else nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.transactions import (
    RecordedStartRequest,
    RecordedTransactionRequest,
    TransactionActivities,
)
from db.models import MeterValue, OcppTransaction, Station

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def add_transaction(db_sessions: async_sessionmaker[AsyncSession]) -> int:
    async with db_sessions() as session, session.begin():
        session.add(Station(id="REC-TX", price_tyiyn_per_kwh=1_500))
        await session.flush()
        transaction = OcppTransaction(
            station_id="REC-TX",
            connector_id=1,
            id_tag="sessionsessionab",
            session_id="sessionsessionab",
            meter_start_wh=10_000,
            started_at=T0,
        )
        session.add(transaction)
        await session.flush()
        return transaction.id


async def add_reading(
    db_sessions: async_sessionmaker[AsyncSession], transaction_id: int, register: int, minutes: int
) -> None:
    async with db_sessions() as session, session.begin():
        session.add(
            MeterValue(
                station_id="REC-TX",
                connector_id=1,
                transaction_id=transaction_id,
                measured_at=T0 + timedelta(minutes=minutes),
                energy_wh=register,
            )
        )


async def test_the_record_is_the_stop_else_the_newest_reading_else_nothing(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    lookup = TransactionActivities(db_sessions).recorded_transaction
    transaction_id = await add_transaction(db_sessions)
    request = RecordedTransactionRequest("REC-TX", transaction_id)

    nothing = await lookup(request)
    assert (nothing.source, nothing.found, nothing.energy_wh) == ("nothing", False, 0)

    # Delivered out of order: the newest measurement counts, not the last one stored.
    await add_reading(db_sessions, transaction_id, 11_500, minutes=20)
    await add_reading(db_sessions, transaction_id, 11_000, minutes=10)
    by_meter = await lookup(request)
    assert (by_meter.source, by_meter.energy_wh, by_meter.meter_wh) == (
        "meter_value",
        1_500,
        11_500,
    )
    assert by_meter.at == T0 + timedelta(minutes=20)

    async with db_sessions() as session, session.begin():
        row = await session.get(OcppTransaction, transaction_id)
        assert row is not None
        row.meter_stop_wh, row.stopped_at, row.stop_reason = (
            11_800,
            T0 + timedelta(hours=1),
            "Local",
        )
    by_stop = await lookup(request)
    assert (by_stop.source, by_stop.energy_wh, by_stop.reason) == (
        "stop_transaction",
        1_800,
        "Local",
    )
    assert by_stop.at == T0 + timedelta(hours=1)

    elsewhere = await lookup(RecordedTransactionRequest("OTHER", transaction_id))
    assert elsewhere.source == "nothing"


async def test_samples_without_a_transaction_id_count_when_they_are_the_connectors_own(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Many chargers leave transactionId out of MeterValues: a charger that then stops
    silently is settled on its connector's newest reading, not left `hung`."""
    lookup = TransactionActivities(db_sessions).recorded_transaction
    transaction_id = await add_transaction(db_sessions)

    async def reading(connector: int, register: int, minutes: int) -> None:
        async with db_sessions() as session, session.begin():
            session.add(
                MeterValue(
                    station_id="REC-TX",
                    connector_id=connector,
                    transaction_id=None,
                    measured_at=T0 + timedelta(minutes=minutes),
                    energy_wh=register,
                )
            )

    await reading(1, 9_000, minutes=-5)  # before the start: an earlier transaction's
    await reading(2, 99_000, minutes=30)  # the other connector's meter
    assert (await lookup(RecordedTransactionRequest("REC-TX", transaction_id))).source == "nothing"

    await reading(1, 10_700, minutes=25)
    found = await lookup(RecordedTransactionRequest("REC-TX", transaction_id))
    assert (found.source, found.energy_wh, found.meter_wh) == ("meter_value", 700, 10_700)


async def test_a_recorded_start_is_the_sessions_own_accepted_one(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    lookup = TransactionActivities(db_sessions).recorded_start
    request = RecordedStartRequest("REC-TX", 1, "sessionsessionab")
    assert (await lookup(request)).transaction is None  # no station, no row yet
    transaction_id = await add_transaction(db_sessions)
    async with db_sessions() as session, session.begin():
        row = await session.get(OcppTransaction, transaction_id)
        assert row is not None
        # As the gateway stores a start answered from the stored RemoteStart while Temporal
        # is down: linked to its session only when the relay delivers it.
        row.session_id = None
    found = (await lookup(request)).transaction
    assert found is not None
    assert (found.transaction_id, found.meter_start_wh, found.started_at) == (
        transaction_id,
        10_000,
        T0,
    )
    assert (await lookup(RecordedStartRequest("REC-TX", 2, "sessionsessionab"))).transaction is None
    assert (await lookup(RecordedStartRequest("REC-TX", 1, "othersessionabcd"))).transaction is None

    async with db_sessions() as session, session.begin():
        row = await session.get(OcppTransaction, transaction_id)
        assert row is not None
        row.stop_reason, row.meter_stop_wh, row.stopped_at = "Refused", 10_000, T0
    assert (await lookup(request)).transaction is None  # told Invalid: no session takes it
