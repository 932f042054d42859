"""A station disabled through the operations API, on the real stack: its charger's
BootNotification is answered Rejected over a real websocket; enabled again, Accepted."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.ops.stack import add_station, headers, ops_stack

pytestmark = pytest.mark.integration

REASON = "site closed for repairs"


async def test_a_disabled_station_boots_rejected_until_enabled(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"DS-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with (
        ops_stack(db_sessions, temporal_env.client) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http,
    ):

        async def enabled(value: bool) -> None:
            response = await http.patch(
                f"/api/v1/ops/stations/{station_id}",
                json={"enabled": value, "reason": REASON},
                headers=headers("operator"),
            )
            assert response.status_code == 200, response.text

        await enabled(False)
        charger = stack.station(station_id)
        try:
            assert await charger.start() == "Rejected"
        finally:
            await charger.stop()
        await enabled(True)
        charger = stack.station(station_id)
        try:
            assert await charger.start() == "Accepted"
        finally:
            await charger.stop()
