"""The websocket upgrade: charger passwords, unknown stations, subprotocols."""

from __future__ import annotations

import pytest
from ocpp.exceptions import SecurityError
from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from db.models import Station, StationConnection
from tests.gateway.conftest import PASSWORD, basic_auth, charger_session

pytestmark = pytest.mark.integration


async def _status_of_refused_upgrade(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=10, **kwargs):
            pass
    return refused.value.response.status_code


async def test_wrong_password_is_refused_with_401(gateway, add_station):
    await add_station("EVP-201")
    status = await _status_of_refused_upgrade(
        gateway.url("EVP-201"),
        subprotocols=["ocpp1.6"],
        additional_headers=basic_auth("EVP-201", "not the password"),
    )
    assert status == 401


async def test_missing_credentials_are_refused_with_401(gateway, add_station):
    await add_station("EVP-202")
    assert await _status_of_refused_upgrade(gateway.url("EVP-202"), subprotocols=["ocpp1.6"]) == 401


async def test_credentials_of_another_station_are_refused(gateway, add_station):
    await add_station("EVP-203")
    await add_station("EVP-204")
    status = await _status_of_refused_upgrade(
        gateway.url("EVP-203"),
        subprotocols=["ocpp1.6"],
        additional_headers=basic_auth("EVP-204", PASSWORD),
    )
    assert status == 401


async def test_unknown_station_is_refused_with_401(gateway, db_sessions):
    status = await _status_of_refused_upgrade(
        gateway.url("EVP-NOPE"),
        subprotocols=["ocpp1.6"],
        additional_headers=basic_auth("EVP-NOPE", PASSWORD),
    )
    assert status == 401
    async with db_sessions() as session:
        assert (await session.scalars(select(StationConnection))).all() == []


async def test_unknown_station_is_pending_when_onboarding_is_allowed(start_gateway, db_sessions):
    running = await start_gateway(allow_unknown_stations=True)
    async with charger_session(running.url("EVP-NEW"), "EVP-NEW", password=None) as connected:
        boot = await connected.charger.call(
            call.BootNotification(charge_point_vendor="Acme", charge_point_model="One"),
            suppress=False,
        )
        heartbeat = await connected.charger.call(call.Heartbeat(), suppress=False)
        with pytest.raises(SecurityError):
            await connected.charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                suppress=False,
            )
    assert boot.status == RegistrationStatus.pending
    assert heartbeat.current_time.endswith("Z")
    async with db_sessions() as session:
        assert await session.get(Station, "EVP-NEW") is None


async def test_correct_password_on_either_path_is_accepted(gateway, add_station):
    await add_station("EVP-205")
    for prefix in ("ws", "ocpp"):
        async with charger_session(gateway.url("EVP-205", prefix), "EVP-205") as connected:
            answer = await connected.charger.call(call.Heartbeat(), suppress=False)
            assert answer.current_time


async def test_client_offering_no_subprotocol_is_served_as_16(gateway, add_station):
    await add_station("EVP-206")
    async with charger_session(gateway.url("EVP-206"), "EVP-206", subprotocols=[]) as connected:
        assert connected.socket.subprotocol is None
        answer = await connected.charger.call(call.Heartbeat(), suppress=False)
    assert answer.current_time


async def test_client_offering_only_other_versions_is_refused(gateway, add_station):
    await add_station("EVP-207")
    status = await _status_of_refused_upgrade(
        gateway.url("EVP-207"),
        subprotocols=["ocpp2.0.1", "ocpp2.0"],
        additional_headers=basic_auth("EVP-207", PASSWORD),
    )
    assert status == 400


async def test_paths_that_name_no_station_are_refused(gateway):
    status = await _status_of_refused_upgrade(
        f"ws://127.0.0.1:{gateway.port}/ws/a/b", subprotocols=["ocpp1.6"]
    )
    assert status == 404
