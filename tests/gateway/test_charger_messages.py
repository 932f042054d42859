"""Charger -> CSMS messages over a real websocket: what the charger is told and what is stored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus
from sqlalchemy import func, select

from db.engine import asyncpg_url
from db.models import Connector, MeterValue, OcppTransaction, Station, StationConnection
from tests.gateway.conftest import charger_session

pytestmark = pytest.mark.integration

METER = {
    "connector_id": 1,
    "meter_value": [
        {
            "timestamp": "2026-01-01T10:05:00Z",
            "sampled_value": [
                {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "64", "measurand": "SoC", "unit": "Percent", "location": "EV"},
                {"value": "230", "measurand": "Voltage", "unit": "V"},
            ],
        }
    ],
}


async def test_boot_is_accepted_and_stores_the_charger_identity(gateway, add_station, db_sessions):
    await add_station("EVP-101")
    async with charger_session(gateway.url("EVP-101"), "EVP-101") as connected:
        assert connected.socket.subprotocol == "ocpp1.6"
        answer = await connected.charger.call(
            call.BootNotification(
                charge_point_vendor="Kempower",
                charge_point_model="S-Series",
                charge_point_serial_number="SN-42",
                firmware_version="1.2.3",
            ),
            suppress=False,
        )
    assert answer.status == RegistrationStatus.accepted
    assert answer.interval == 60
    assert answer.current_time.endswith("Z")
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-101")
    assert (station.vendor, station.model, station.serial_number, station.firmware_version) == (
        "Kempower",
        "S-Series",
        "SN-42",
        "1.2.3",
    )


async def test_heartbeat_answers_utc_time(gateway, add_station):
    await add_station("EVP-102")
    async with charger_session(gateway.url("EVP-102", prefix="ocpp"), "EVP-102") as connected:
        answer = await connected.charger.call(call.Heartbeat(), suppress=False)
    assert answer.current_time.endswith("Z")


async def test_connection_is_registered_while_open_and_cleared_on_close(
    gateway, add_station, db_sessions
):
    await add_station("EVP-103")
    async with charger_session(gateway.url("EVP-103"), "EVP-103") as connected:
        await connected.charger.call(call.Heartbeat(), suppress=False)
        async with db_sessions() as session:
            row = await session.get(StationConnection, "EVP-103")
        assert row is not None
        assert row.gateway_queue == gateway.gateway.task_queue
        assert row.remote_address.startswith("127.0.0.1:")
    for _ in range(200):
        async with db_sessions() as session:
            if await session.get(StationConnection, "EVP-103") is None:
                break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("connection row was not cleared after the charger disconnected")


async def test_status_notification_is_stored_and_published(
    gateway, add_station, db_sessions, database_url
):
    await add_station("EVP-104")
    listener = await asyncpg.connect(asyncpg_url(database_url).replace("+asyncpg", ""))
    notices: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await listener.add_listener(
        "station_status", lambda *args: notices.put_nowait(json.loads(args[3]))
    )
    try:
        async with charger_session(gateway.url("EVP-104"), "EVP-104") as connected:
            await connected.charger.call(
                call.StatusNotification(connector_id=2, error_code="NoError", status="Charging"),
                suppress=False,
            )
            notice = await asyncio.wait_for(_next_status(notices), 10)
    finally:
        await listener.close()
    assert notice["station_id"] == "EVP-104"
    assert (notice["connector_id"], notice["status"], notice["error_code"]) == (
        2,
        "Charging",
        "NoError",
    )
    assert notice["at"].endswith("Z")
    async with db_sessions() as session:
        connector = await session.get(Connector, ("EVP-104", 2))
    assert connector.status == "Charging"
    assert connector.status_at is not None


async def test_station_offline_carries_when_it_went_offline(gateway, add_station, database_url):
    """Not when the station came online, nor its last message: the locations stream shows
    the moment the connection closed, with the last traffic beside it."""
    await add_station("EVP-105")
    listener = await asyncpg.connect(asyncpg_url(database_url).replace("+asyncpg", ""))
    notices: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await listener.add_listener(
        "station_status", lambda *args: notices.put_nowait(json.loads(args[3]))
    )
    try:
        async with charger_session(gateway.url("EVP-105"), "EVP-105") as connected:
            await connected.charger.call(
                call.BootNotification(charge_point_vendor="V", charge_point_model="M"),
                suppress=False,
            )
            online = await asyncio.wait_for(_next_event(notices, "station_online"), 10)
            # Event times are whole seconds: stay connected into the next one.
            await asyncio.sleep(1.1)
            closed_at = datetime.now(UTC).replace(microsecond=0)
        offline = await asyncio.wait_for(_next_event(notices, "station_offline"), 10)
    finally:
        await listener.close()
    assert datetime.fromisoformat(offline["at"]) >= closed_at
    assert datetime.fromisoformat(offline["at"]) > datetime.fromisoformat(online["at"])
    assert datetime.fromisoformat(offline["last_seen_at"]) <= datetime.fromisoformat(offline["at"])


async def _next_event(notices: asyncio.Queue[dict[str, Any]], event: str) -> dict[str, Any]:
    while True:
        notice = await notices.get()
        if notice["event"] == event:
            return notice


async def _next_status(notices: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    while True:
        notice = await notices.get()
        if notice["event"] == "connector_status":
            return notice


async def test_local_start_meter_stop_is_recorded(gateway, add_station, db_sessions):
    """A start nobody paid for: recorded for reconciliation, answered Invalid, never dropped."""
    await add_station("EVP-105")
    async with charger_session(gateway.url("EVP-105"), "EVP-105") as connected:
        started = await connected.charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag="RFID-CARD-1",
                meter_start=12_000,
                timestamp="2026-01-01T10:00:00Z",
            ),
            suppress=False,
        )
        assert started.id_tag_info["status"] == "Invalid"
        meter = dict(METER, transaction_id=started.transaction_id)
        await connected.charger.call(call.MeterValues(**meter), suppress=False)
        stopped = await connected.charger.call(
            call.StopTransaction(
                meter_stop=12_600,
                timestamp="2026-01-01T10:10:00Z",
                transaction_id=started.transaction_id,
                reason="Local",
            ),
            suppress=False,
        )
    assert stopped.id_tag_info is None
    async with db_sessions() as session:
        tx = await session.get(OcppTransaction, started.transaction_id)
        samples = (await session.scalars(select(MeterValue))).all()
    assert tx.session_id is None
    assert (tx.meter_start_wh, tx.meter_stop_wh, tx.stop_reason) == (12_000, 12_600, "Local")
    assert [(s.transaction_id, s.energy_wh, s.power_w, s.soc_percent) for s in samples] == [
        (started.transaction_id, 12_500, 7_200, 64)
    ]


async def test_start_retried_with_a_new_message_id_gets_the_same_transaction(
    gateway, add_station, db_sessions
):
    await add_station("EVP-106")
    start = call.StartTransaction(
        connector_id=1, id_tag="RFID-CARD-2", meter_start=500, timestamp="2026-01-01T11:00:00Z"
    )
    async with charger_session(gateway.url("EVP-106"), "EVP-106") as connected:
        first = await connected.charger.call(start, suppress=False)
        second = await connected.charger.call(start, suppress=False)
    async with charger_session(gateway.url("EVP-106"), "EVP-106") as reconnected:
        third = await reconnected.charger.call(start, suppress=False)
    assert first.transaction_id == second.transaction_id == third.transaction_id
    async with db_sessions() as session:
        count = await session.scalar(select(func.count()).select_from(OcppTransaction))
    assert count == 1


async def test_stop_for_unknown_or_stopped_transaction_is_accepted(
    gateway, add_station, db_sessions
):
    await add_station("EVP-107")
    async with charger_session(gateway.url("EVP-107"), "EVP-107") as connected:
        unknown = await connected.charger.call(
            call.StopTransaction(
                meter_stop=10,
                timestamp="2026-01-01T12:00:00Z",
                transaction_id=987_654,
                id_tag="RFID-CARD-3",
            ),
            suppress=False,
        )
        assert unknown.id_tag_info["status"] == "Accepted"
        started = await connected.charger.call(
            call.StartTransaction(
                connector_id=2,
                id_tag="RFID-CARD-3",
                meter_start=100,
                timestamp="2026-01-01T12:00:00Z",
            ),
            suppress=False,
        )
        for meter_stop in (400, 999):  # the second is a late duplicate with other figures
            await connected.charger.call(
                call.StopTransaction(
                    meter_stop=meter_stop,
                    timestamp="2026-01-01T12:30:00Z",
                    transaction_id=started.transaction_id,
                ),
                suppress=False,
            )
        # The charger is still served after all of that.
        await connected.charger.call(call.Heartbeat(), suppress=False)
    async with db_sessions() as session:
        tx = await session.get(OcppTransaction, started.transaction_id)
    assert tx.meter_stop_wh == 400


async def test_data_transfer_and_notifications_are_answered(gateway, add_station):
    await add_station("EVP-108")
    async with charger_session(gateway.url("EVP-108"), "EVP-108") as connected:
        transfer = await connected.charger.call(
            call.DataTransfer(vendor_id="com.example", message_id="hello", data="{}"),
            suppress=False,
        )
        await connected.charger.call(
            call.DiagnosticsStatusNotification(status="Uploaded"), suppress=False
        )
        await connected.charger.call(
            call.FirmwareStatusNotification(status="Installed"), suppress=False
        )
    assert transfer.status == "UnknownVendorId"
