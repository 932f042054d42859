"""OCPP-J liveness: a WebSocket pong is life. A charger silent on OCPP but answering pings
stays online, and is asked for a clock-sync Heartbeat (TriggerMessage) once per interval."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, TriggerMessageStatus
from websockets.asyncio.client import connect
from websockets.protocol import State
from websockets.typing import Subprotocol

from db.models import Station
from tests.gateway.conftest import PASSWORD, Charger, basic_auth, charger_session

pytestmark = pytest.mark.integration

HEARTBEAT_S = 1


class TriggeredCharger(Charger):
    """Answers TriggerMessage and records what it was asked for."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.triggered: list[str] = []

    @on(Action.trigger_message)
    async def on_trigger(self, requested_message: str, **_: Any) -> Any:
        self.triggered.append(requested_message)
        return call_result.TriggerMessage(status=TriggerMessageStatus.accepted)


@contextlib.asynccontextmanager
async def triggered_charger(url: str, station_id: str) -> AsyncIterator[TriggeredCharger]:
    socket = await connect(
        url,
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=basic_auth(station_id, PASSWORD),
        ping_interval=None,  # it only answers the server's pings
    )
    charger = TriggeredCharger(station_id, socket)
    task = asyncio.create_task(charger.start())
    try:
        yield charger
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await socket.close()


async def last_seen(db_sessions, station_id: str) -> datetime | None:
    async with db_sessions() as session:
        station = await session.get(Station, station_id)
        return None if station is None else station.last_seen_at


async def test_a_charger_that_only_answers_pings_stays_online(
    start_gateway, add_station, db_sessions
):
    running = await start_gateway(
        heartbeat_interval_s=HEARTBEAT_S, last_seen_flush_s=0.5, ws_ping_interval=0.2
    )
    await add_station("EVP-601")
    beyond = datetime.now(UTC) + timedelta(seconds=3 * HEARTBEAT_S)
    async with charger_session(running.url("EVP-601"), "EVP-601") as quiet:
        quiet.task.cancel()  # no OCPP at all from now on; the socket still answers pings
        for _ in range(300):  # until pongs have kept it seen past 2x the heartbeat interval
            seen = await last_seen(db_sessions, "EVP-601")
            if seen is not None and seen > beyond:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("pongs were not counted as traffic")
        assert quiet.socket.state is State.OPEN
        assert running.gateway.registry.get("EVP-601") is not None


async def test_a_ping_only_charger_is_asked_for_a_clock_sync_heartbeat(start_gateway, add_station):
    running = await start_gateway(
        heartbeat_interval_s=HEARTBEAT_S,
        last_seen_flush_s=0.5,
        ws_ping_interval=0.2,
        clock_sync_interval_s=1.0,
    )
    await add_station("EVP-602")
    await add_station("EVP-603")
    async with (
        triggered_charger(running.url("EVP-602"), "EVP-602") as pinging,
        triggered_charger(running.url("EVP-603"), "EVP-603") as beating,
    ):
        for _ in range(200):
            await beating.call(call.Heartbeat(), suppress=False)  # keeps its clock synced
            if pinging.triggered:
                break
            await asyncio.sleep(0.05)
        assert pinging.triggered[:1] == ["Heartbeat"]
        assert beating.triggered == []
