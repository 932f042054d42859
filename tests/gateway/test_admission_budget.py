"""A reconnect storm's bookkeeping cannot take the pool from transaction messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Connector, Station
from gateway.store import GatewayStore


async def test_admission_waits_for_its_budget_while_transaction_queries_go_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            insert(Station),
            [{"id": "ADM-1", "name": "", "price_tyiyn_per_kwh": 1500}],
        )
        await session.execute(insert(Connector), [{"station_id": "ADM-1", "connector_id": 1}])
    store = GatewayStore(sessions, admission_connections=1)
    now = datetime.now(UTC)

    async with store._admission:  # the storm holds the whole admission budget
        connecting = asyncio.create_task(store.connect("ADM-1", "gateway-a", now, None))
        booting = asyncio.create_task(
            store.record_boot(
                "ADM-1", vendor="v", model="m", serial_number=None, firmware_version=None, at=now
            )
        )
        # A transaction-path query is not queued behind the storm.
        assert await asyncio.wait_for(store.has_remote_start("ADM-1", "tag"), 30) is False
        assert not connecting.done() and not booting.done()

    await asyncio.wait_for(asyncio.gather(connecting, booting), 30)
    assert (await store.stations_auth(["ADM-1"]))["ADM-1"].registration_status == "accepted"
