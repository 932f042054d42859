"""Batched connect / boot / status records (gateway/bookkeeping.py) against the real database:
records of one station that land in the same batch, stations deleted meanwhile, answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import Connector, Station, StationConnection
from gateway.bookkeeping import Bookkeeping, Booted, StatusReported

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


async def test_one_batch_with_repeats_of_a_station_keeps_the_newest(
    engine, db_sessions, add_station
):
    await add_station("EVP-K1")
    books = Bookkeeping(engine, "gateway-q")
    later = T0 + timedelta(seconds=1)
    # Gathered: every record lands in the same batch, two of each kind for EVP-K1.
    results = await asyncio.gather(
        books.connect("EVP-K1", T0, "10.0.0.1:1"),
        books.connect("EVP-K1", later, "10.0.0.1:2"),
        books.connect("EVP-GONE", T0, None),  # no such station: skipped, not an error
        books.boot(Booted("EVP-K1", "V1", "M1", None, "1.0", T0)),
        books.boot(Booted("EVP-K1", "V2", "M2", "SN", "2.0", later)),
        books.status(StatusReported("EVP-K1", 1, "Charging", "NoError", T0, check_open=True)),
        books.status(StatusReported("EVP-K1", 1, "Available", "NoError", later, check_open=True)),
        books.status(StatusReported("EVP-GONE", 1, "Available", "NoError", T0)),
    )
    assert results[:3] == [[], [], []]  # no live sessions
    assert results[5:] == [False, False, False]  # no open transactions
    async with db_sessions() as session:
        held = await session.get(StationConnection, "EVP-K1")
        station = await session.get(Station, "EVP-K1")
        connector = await session.get(Connector, ("EVP-K1", 1))
        others = (await session.scalars(select(StationConnection.station_id))).all()
    assert (held.gateway_queue, held.connected_at, held.remote_address) == (
        "gateway-q",
        later,
        "10.0.0.1:2",
    )
    assert (station.vendor, station.model, station.serial_number, station.firmware_version) == (
        "V2",
        "M2",
        "SN",
        "2.0",
    )
    assert station.last_seen_at == later
    assert (connector.status, connector.status_at) == ("Available", later)
    assert others == ["EVP-K1"]


async def test_a_connect_does_not_forget_what_the_last_boot_recorded(
    engine, db_sessions, add_station
):
    await add_station("EVP-K2")
    books = Bookkeeping(engine, "gateway-q")
    await books.boot(Booted("EVP-K2", "V", "M", "SN", "1.0", T0))
    await books.connect("EVP-K2", T0 + timedelta(seconds=5), None)
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-K2")
    assert (station.vendor, station.firmware_version) == ("V", "1.0")
    assert station.last_seen_at == T0 + timedelta(seconds=5)
