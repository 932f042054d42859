"""Connection lifecycle: replacement, silent chargers, graceful shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from ocpp.v16 import call
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from db.models import Station, StationConnection
from gateway.handlers import StationHandler
from tests.gateway.conftest import charger_session

pytestmark = pytest.mark.integration


async def wait_closed(connected) -> int:
    """The close code the server sent to this charger."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connected.socket.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def connection_row(db_sessions, station_id: str):
    async with db_sessions() as session:
        return await session.get(StationConnection, station_id)


async def test_new_connection_replaces_the_old_one(gateway, add_station, db_sessions):
    await add_station("EVP-501")
    async with charger_session(gateway.url("EVP-501"), "EVP-501") as old:
        await old.charger.call(call.Heartbeat(), suppress=False)
        first_row = await connection_row(db_sessions, "EVP-501")
        # The old socket's receive loop must not swallow the close we want to observe.
        old.task.cancel()
        async with charger_session(gateway.url("EVP-501"), "EVP-501") as new:
            assert await wait_closed(old) == 1000
            answer = await new.charger.call(call.Heartbeat(), suppress=False)
            assert answer.current_time.endswith("Z")
            await asyncio.sleep(0.2)  # let the old connection's clean-up run
            row = await connection_row(db_sessions, "EVP-501")
            assert row is not None, "the old connection's clean-up removed the new one's row"
            assert row.connected_at > first_row.connected_at
            assert gateway.gateway.registry.get("EVP-501") is not None


async def test_silent_charger_is_closed_and_shown_offline(start_gateway, add_station, db_sessions):
    running = await start_gateway(heartbeat_interval_s=1, last_seen_flush_s=0.5)
    await add_station("EVP-502")
    async with charger_session(running.url("EVP-502"), "EVP-502") as silent:
        silent.task.cancel()  # from now on it says nothing, like a hung charger
        assert await wait_closed(silent) == 1001
    for _ in range(200):
        if await connection_row(db_sessions, "EVP-502") is None:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the silent charger is still listed as connected")
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-502")
    assert station.last_seen_at is not None


async def test_heartbeats_are_recorded_as_last_seen(start_gateway, add_station, db_sessions):
    running = await start_gateway(heartbeat_interval_s=60, last_seen_flush_s=0.2)
    await add_station("EVP-503")

    async def last_seen_after(moment: datetime | None) -> datetime:
        for _ in range(200):
            async with db_sessions() as session:
                seen: datetime | None = await session.scalar(
                    select(Station.last_seen_at).where(Station.id == "EVP-503")
                )
            if seen is not None and (moment is None or seen > moment):
                return seen
            await asyncio.sleep(0.05)
        pytest.fail("stations.last_seen_at did not move")

    async with charger_session(running.url("EVP-503"), "EVP-503") as connected:
        await connected.charger.call(call.Heartbeat(), suppress=False)
        first = await last_seen_after(None)
        await connected.charger.call(call.Heartbeat(), suppress=False)
        await last_seen_after(first)


async def test_stop_closes_chargers_with_1001_and_clears_the_registry(
    start_gateway, add_station, db_sessions
):
    running = await start_gateway()
    await add_station("EVP-504")
    await add_station("EVP-505")
    async with (
        charger_session(running.url("EVP-504"), "EVP-504") as first,
        charger_session(running.url("EVP-505"), "EVP-505") as second,
    ):
        await first.charger.call(call.Heartbeat(), suppress=False)
        await second.charger.call(call.Heartbeat(), suppress=False)
        first.task.cancel()
        second.task.cancel()
        await running.gateway.stop()
        assert await wait_closed(first) == 1001
        assert await wait_closed(second) == 1001
    async with db_sessions() as session:
        assert (await session.scalars(select(StationConnection))).all() == []


async def test_rows_left_by_a_dead_gateway_are_cleared(start_gateway, add_station, db_sessions):
    await add_station("EVP-506")
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with db_sessions.begin() as session:
        station = await session.get(Station, "EVP-506")
        station.last_seen_at = long_ago
        session.add(
            StationConnection(
                station_id="EVP-506", gateway_queue="gateway-crashed", connected_at=long_ago
            )
        )
    await start_gateway(heartbeat_interval_s=1, last_seen_flush_s=0.5)
    for _ in range(200):
        if await connection_row(db_sessions, "EVP-506") is None:
            return
        await asyncio.sleep(0.05)
    pytest.fail("a dead gateway's row still claims the station")


async def test_stop_clears_the_registry_rows_before_closing_sockets(
    start_gateway, add_station, db_sessions, monkeypatch
):
    """During a rolling deploy no workflow may route a command to a gateway that is
    already closing its chargers."""
    running = await start_gateway()
    await add_station("EVP-507")
    rows_while_closing: list[object] = []
    close = StationHandler.close

    async def close_and_look(self: StationHandler, code: int, reason: str) -> None:
        rows_while_closing.append(await connection_row(db_sessions, self.station_id))
        await close(self, code, reason)

    monkeypatch.setattr(StationHandler, "close", close_and_look)
    async with charger_session(running.url("EVP-507"), "EVP-507") as connected:
        await connected.charger.call(call.Heartbeat(), suppress=False)
        assert await connection_row(db_sessions, "EVP-507") is not None
        connected.task.cancel()
        await running.gateway.stop()
        assert await wait_closed(connected) == 1001
    assert rows_while_closing == [None]


async def test_command_deadline_includes_waiting_for_the_previous_command(gateway, add_station):
    await add_station("EVP-508")
    async with charger_session(gateway.url("EVP-508"), "EVP-508") as connected:
        connected.charger.answer_commands = False
        await connected.charger.call(call.Heartbeat(), suppress=False)
        station = gateway.gateway.registry.get("EVP-508")
        assert station is not None
        unanswered = asyncio.create_task(
            station.call(call.RemoteStopTransaction(transaction_id=1), 60)
        )
        await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 10)
        second = asyncio.create_task(
            station.call(call.RemoteStopTransaction(transaction_id=2), 0.5)
        )
        done, _ = await asyncio.wait({second}, timeout=20)
        assert second in done, "the second command waited for the first one's whole deadline"
        assert isinstance(second.exception(), TimeoutError)
        assert not unanswered.done()
        unanswered.cancel()
