"""Who gets in, and how fast: passwordless stations, login throttling, the legacy hashing
backlog, pending stations promoted once an operator registers them."""

from __future__ import annotations

import asyncio
import threading

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from gateway.auth import verify_legacy
from gateway.charger_auth import Authenticator, AuthLimits
from gateway.store import GatewayStore
from tests.gateway.conftest import KEYS, PASSWORD, basic_auth, charger_session

pytestmark = pytest.mark.integration


async def _refused(url: str, station_id: str, password: str | None) -> InvalidStatus:
    headers = basic_auth(station_id, password) if password is not None else {}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            url, subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers, open_timeout=10
        ):
            pass
    return refused.value


async def test_station_without_password_is_refused_by_default(gateway, add_station):
    await add_station("EVP-601", password=None)
    refused = await _refused(gateway.url("EVP-601"), "EVP-601", None)
    assert refused.response.status_code == 401


async def test_station_without_password_is_served_when_explicitly_allowed(
    start_gateway, add_station
):
    running = await start_gateway(allow_passwordless_stations=True)
    await add_station("EVP-602", password=None)
    async with charger_session(running.url("EVP-602"), "EVP-602", password=None) as connected:
        boot = await connected.charger.call(
            call.BootNotification(charge_point_vendor="Acme", charge_point_model="One"),
            suppress=False,
        )
    assert boot.status == RegistrationStatus.accepted


async def test_wrong_password_flood_throttles_that_station_only(gateway, add_station):
    await add_station("EVP-603")
    await add_station("EVP-604")
    statuses = [
        (await _refused(gateway.url("EVP-603"), "EVP-603", "guess")).response.status_code
        for _ in range(AuthLimits().failures_per_station)
    ]
    assert statuses == [401] * AuthLimits().failures_per_station
    throttled = await _refused(gateway.url("EVP-603"), "EVP-603", "another guess")
    assert throttled.response.status_code == 429
    assert int(throttled.response.headers["Retry-After"]) >= 1
    async with charger_session(gateway.url("EVP-603"), "EVP-603") as known:
        assert (await known.charger.call(call.Heartbeat(), suppress=False)).current_time
    # Everyone else, from the same address, is unaffected.
    async with charger_session(gateway.url("EVP-604"), "EVP-604") as other:
        assert (await other.charger.call(call.Heartbeat(), suppress=False)).current_time


async def test_failures_from_one_address_throttle_wrong_keys_from_it_only(db_sessions, add_station):
    for number in range(4):
        await add_station(f"EVP-61{number}")
    auth = Authenticator(
        GatewayStore(db_sessions),
        KEYS,
        allow_unknown=False,
        allow_passwordless=False,
        limits=AuthLimits(failures_per_address=3),
    )
    try:
        for number in range(3):
            station_id = f"EVP-61{number}"
            verdict = await auth.check(station_id, (station_id, "guess"), "203.0.113.7")
            assert verdict.status == 401
        blocked = await auth.check("EVP-613", ("EVP-613", "guess"), "203.0.113.7")
        right_key = await auth.check("EVP-613", ("EVP-613", PASSWORD), "203.0.113.7")
        elsewhere = await auth.check("EVP-612", ("EVP-612", "guess"), "198.51.100.1")
    finally:
        auth.close()
    assert (blocked.registration, blocked.status) == (None, 429)
    assert blocked.retry_after_s is not None
    assert right_key.registration == "accepted"  # a charger behind that NAT still gets in
    assert elsewhere.status == 401


async def test_full_legacy_hashing_backlog_answers_503_with_retry_after(db_sessions, add_station):
    await add_station("EVP-620", legacy=True)
    await add_station("EVP-621", legacy=True)
    started, release = threading.Event(), threading.Event()

    def slow_verify(password: str, stored: str) -> bool:
        started.set()
        release.wait(30)
        return verify_legacy(password, stored)

    auth = Authenticator(
        GatewayStore(db_sessions),
        KEYS,
        allow_unknown=False,
        allow_passwordless=False,
        limits=AuthLimits(workers=1, backlog=1),
        legacy_verify=slow_verify,
    )
    try:
        first = asyncio.create_task(auth.check("EVP-620", ("EVP-620", PASSWORD), "10.0.0.1"))
        assert await asyncio.to_thread(started.wait, 10)  # the first job holds the only slot
        busy = await auth.check("EVP-621", ("EVP-621", PASSWORD), "10.0.0.2")
        release.set()
        admitted = await first
        after = await auth.check("EVP-621", ("EVP-621", PASSWORD), "10.0.0.2")
    finally:
        release.set()
        auth.close()
    assert (busy.registration, busy.status) == (None, 503)
    assert busy.retry_after_s is not None and busy.retry_after_s >= 1
    assert admitted.registration == "accepted"
    assert after.registration == "accepted"


async def test_pending_station_is_asked_to_reconnect_once_registered(start_gateway, add_station):
    running = await start_gateway(allow_unknown_stations=True)
    boot = call.BootNotification(charge_point_vendor="Acme", charge_point_model="One")
    async with charger_session(running.url("EVP-630"), "EVP-630", password=None) as pending:
        first = await pending.charger.call(boot, suppress=False)
        assert first.status == RegistrationStatus.pending
        await add_station("EVP-630")  # `evpower stations add` while the charger keeps booting
        pending.task.cancel()  # read the close ourselves
        await pending.socket.send(
            '[2,"boot-2","BootNotification",{"chargePointVendor":"Acme","chargePointModel":"One"}]'
        )
        answer = await asyncio.wait_for(pending.socket.recv(), 10)
        assert '"Pending"' in str(answer)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(pending.socket.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    async with charger_session(running.url("EVP-630"), "EVP-630") as registered:
        again = await registered.charger.call(boot, suppress=False)
    assert again.status == RegistrationStatus.accepted
