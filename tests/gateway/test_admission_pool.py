"""Admission's own pool: a reconnect storm that takes every connection of it cannot hold up
the storage of transaction messages, which use the gateway's other pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ocpp.v16 import call
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.models import MeterValue, OcppTransaction, StationConnection
from tests.gateway.conftest import charger_session
from tests.gateway.test_charger_messages import METER

pytestmark = pytest.mark.integration


@pytest.fixture
async def admission_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pre_ping=False)
    yield engine
    await engine.dispose()


async def test_transaction_messages_are_stored_while_admission_pool_is_exhausted(
    start_gateway, add_station, db_sessions, admission_engine
):
    running = await start_gateway(admission_engine=admission_engine)
    await add_station("EVP-A")
    await add_station("EVP-B")
    async with charger_session(running.url("EVP-A"), "EVP-A") as charging:
        await charging.charger.call(
            call.BootNotification(charge_point_vendor="V", charge_point_model="M"),
            suppress=False,
        )
        # A storm holds admission's only connection: EVP-B's key read waits for it.
        held = await admission_engine.connect()
        arriving = asyncio.create_task(charger_session(running.url("EVP-B"), "EVP-B").__aenter__())
        try:
            started = await charging.charger.call(
                call.StartTransaction(
                    connector_id=1,
                    id_tag="RFID-CARD-1",
                    meter_start=12_000,
                    timestamp="2026-01-01T10:00:00Z",
                ),
                suppress=False,
            )
            meter = dict(METER, transaction_id=started.transaction_id)
            await charging.charger.call(call.MeterValues(**meter), suppress=False)
            await charging.charger.call(
                call.StopTransaction(
                    meter_stop=12_600,
                    timestamp="2026-01-01T10:10:00Z",
                    transaction_id=started.transaction_id,
                    reason="Local",
                ),
                suppress=False,
            )
            async with db_sessions() as session:
                tx = await session.get(OcppTransaction, started.transaction_id)
                samples = (await session.scalars(select(MeterValue))).all()
                b_rows = (
                    await session.scalars(
                        select(StationConnection).where(StationConnection.station_id == "EVP-B")
                    )
                ).all()
            assert (tx.meter_start_wh, tx.meter_stop_wh, tx.stop_reason) == (
                12_000,
                12_600,
                "Local",
            )
            assert [s.transaction_id for s in samples] == [started.transaction_id]
            # Admission, meanwhile, waited for its own pool and recorded nothing for EVP-B.
            assert not arriving.done() and b_rows == []
        finally:
            await held.close()
        # With its connection back, admission lets the waiting charger in.
        session_b = await asyncio.wait_for(arriving, timeout=30)
        await session_b.socket.close()
        session_b.task.cancel()
