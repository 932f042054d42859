"""`assess_meter_readings` on the real database: the stored samples of the transaction, the
connector's configured power, and the Temporal payload round trip of the verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.converter import DataConverter

from activities.transactions import MeterAssessment, MeterReadingsRequest, TransactionActivities
from db.models import Connector, MeterValue, OcppTransaction, Station
from domain.meter_readings import DEFAULT_MAX_POWER_W, ReviewReason, Verdict

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def add_transaction(db_sessions: async_sessionmaker[AsyncSession], station: str) -> int:
    async with db_sessions() as session, session.begin():
        session.add(Station(id=station, price_tyiyn_per_kwh=1_500))
        await session.flush()
        session.add(Connector(station_id=station, connector_id=1, current_type="AC"))
        transaction = OcppTransaction(
            station_id=station,
            connector_id=1,
            id_tag="metermetermeter1",
            session_id="metermetermeter1",
            meter_start_wh=1_000,
            started_at=T0,
        )
        session.add(transaction)
        await session.flush()
        for minutes, register in ((10, 1_500), (20, 2_000), (30, 100)):
            session.add(
                MeterValue(
                    station_id=station,
                    connector_id=1,
                    transaction_id=transaction.id,
                    measured_at=T0 + timedelta(minutes=minutes),
                    energy_wh=register,
                )
            )
        # A sample stamped after the stop is not part of what the stop bills.
        session.add(
            MeterValue(
                station_id=station,
                connector_id=1,
                transaction_id=transaction.id,
                measured_at=T0 + timedelta(hours=5),
                energy_wh=9_999_999,
            )
        )
        return transaction.id


async def test_a_reset_is_rebuilt_from_the_stored_samples_at_the_connectors_power(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    transaction_id = await add_transaction(db_sessions, "METER-DB")
    request = MeterReadingsRequest(
        "METER-DB", 1, transaction_id, 1_000, T0, 500, T0 + timedelta(minutes=40)
    )
    result = await TransactionActivities(db_sessions).assess_meter_readings(request)
    assert result.max_power_w == DEFAULT_MAX_POWER_W["AC"]  # no power configured: AC default
    assert result.assessment.verdict is Verdict.REBUILT
    assert result.assessment.billable_wh == 1_000 + 400

    # What the workflow gets back through Temporal's converter is the same verdict.
    converter = DataConverter.default
    payloads = await converter.encode([result])
    decoded = (await converter.decode(payloads, [MeterAssessment]))[0]
    assert decoded == result


async def test_the_configured_power_bounds_the_steps(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    transaction_id = await add_transaction(db_sessions, "METER-DB2")
    async with db_sessions() as session, session.begin():
        connector = await session.get(Connector, ("METER-DB2", 1))
        assert connector is not None
        connector.max_power_w = 1_000  # 1 kW: 500 Wh in 10 minutes is too much
    request = MeterReadingsRequest(
        "METER-DB2", 1, transaction_id, 1_000, T0, 2_000, T0 + timedelta(minutes=20)
    )
    result = await TransactionActivities(db_sessions).assess_meter_readings(request)
    assert result.max_power_w == 1_000
    assert result.assessment.reason is ReviewReason.IMPLAUSIBLE_STEP


async def test_samples_without_a_transaction_id_on_its_connector_are_judged_too(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A jump reported without transactionId is as much this transaction's as any other."""
    async with db_sessions() as session, session.begin():
        session.add(Station(id="METER-NOID", price_tyiyn_per_kwh=1_500))
        await session.flush()
        session.add(Connector(station_id="METER-NOID", connector_id=1, current_type="AC"))
        transaction = OcppTransaction(
            station_id="METER-NOID",
            connector_id=1,
            id_tag="metermetermeter2",
            session_id="metermetermeter2",
            meter_start_wh=1_000,
            started_at=T0,
        )
        session.add(transaction)
        await session.flush()
        transaction_id = transaction.id
        for minutes, register in ((10, 2_000), (20, 900_000), (30, 3_000)):
            session.add(
                MeterValue(
                    station_id="METER-NOID",
                    connector_id=1,
                    transaction_id=None,
                    measured_at=T0 + timedelta(minutes=minutes),
                    energy_wh=register,
                )
            )
    request = MeterReadingsRequest(
        "METER-NOID", 1, transaction_id, 1_000, T0, 4_000, T0 + timedelta(minutes=40)
    )
    result = await TransactionActivities(db_sessions).assess_meter_readings(request)
    # The 900 kWh sample came back down: a glitch, seen (so the samples were read) and ignored.
    assert result.assessment.glitches == 1
    assert len(result.assessment.readings) == 5  # start, three samples, stop
