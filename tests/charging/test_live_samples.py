"""`samples_after` on the real database: what a live session stream sends after a burst of
samples stored at once (one NOTIFY, one read), a glitch among them, and a backlog."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.v1.live_energy import MAX_SAMPLES_AT_ONCE, LiveSample, delivered_wh, samples_after
from db.models import MeterValue, OcppTransaction, Station

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AC_22_KW = 22_000


async def _transaction(db_sessions: async_sessionmaker[AsyncSession]) -> tuple[str, int]:
    station = f"LIVE-{uuid.uuid4().hex[:8]}"
    async with db_sessions() as session, session.begin():
        session.add(Station(id=station, price_tyiyn_per_kwh=1_500))
        await session.flush()
        transaction = OcppTransaction(
            station_id=station,
            connector_id=1,
            id_tag="livelivelivelive",
            session_id="livelivelivelive",
            meter_start_wh=10_000,
            started_at=T0,
        )
        session.add(transaction)
        await session.flush()
        return station, transaction.id


async def _store(
    db_sessions: async_sessionmaker[AsyncSession],
    station: str,
    transaction_id: int,
    readings: list[tuple[int, int | None, int | None]],
) -> None:
    """(minute, register Wh, power W) rows, in one database transaction like a gateway batch."""
    async with db_sessions() as session, session.begin():
        for minute, register, power in readings:
            session.add(
                MeterValue(
                    station_id=station,
                    connector_id=1,
                    transaction_id=transaction_id,
                    measured_at=T0 + timedelta(minutes=minute),
                    energy_wh=register,
                    power_w=power,
                )
            )


def _energies(samples: list[LiveSample]) -> list[int | None]:
    return [sample.energy_wh for sample in samples]


async def test_a_burst_stored_at_once_is_every_sample_after_the_cursor(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    station, transaction = await _transaction(db_sessions)
    async with db_sessions() as session:
        assert await samples_after(session, transaction, AC_22_KW, after_id=None) == []
        assert await delivered_wh(session, transaction, AC_22_KW) is None

    await _store(db_sessions, station, transaction, [(1, 10_100, 6_000)])
    async with db_sessions() as session:
        first = await samples_after(session, transaction, AC_22_KW, after_id=None)
    assert _energies(first) == [100]

    # Four samples in one batch; the one at minute 3 is a glitch the meter came back from,
    # and the power-only sample in between carries the newest power.
    await _store(
        db_sessions,
        station,
        transaction,
        [(2, 10_200, None), (3, 90_000, None), (4, 10_400, 7_000), (5, None, 8_000)],
    )
    async with db_sessions() as session:
        burst = await samples_after(session, transaction, AC_22_KW, after_id=first[-1].id)
        nothing_new = await samples_after(session, transaction, AC_22_KW, after_id=burst[-1].id)
        total = await delivered_wh(session, transaction, AC_22_KW)
    assert [sample.power_w for sample in burst] == [6_000, 6_000, 7_000, 8_000]
    assert _energies(burst)[0] == 200 and _energies(burst)[2:] == [400, 400]
    glitch = burst[1].energy_wh
    assert glitch is not None and glitch <= 400  # never the glitch's 80 kWh
    # Nothing newer: the newest sample again, so a state change still has the energy.
    assert nothing_new == burst[-1:]
    assert total == 400


async def test_a_backlog_is_bounded_to_its_newest_samples(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    station, transaction = await _transaction(db_sessions)
    await _store(db_sessions, station, transaction, [(0, 10_000, None)])
    async with db_sessions() as session:
        cursor = (await samples_after(session, transaction, AC_22_KW, after_id=None))[-1].id
    uploaded = MAX_SAMPLES_AT_ONCE + 20
    await _store(
        db_sessions,
        station,
        transaction,
        [(minute, 10_000 + 10 * minute, None) for minute in range(1, uploaded + 1)],
    )
    async with db_sessions() as session:
        backlog = await samples_after(session, transaction, AC_22_KW, after_id=cursor)
    assert len(backlog) == MAX_SAMPLES_AT_ONCE
    assert _energies(backlog)[-1] == 10 * uploaded
    assert _energies(backlog) == sorted(_energies(backlog))  # type: ignore[type-var]
