"""The simulator connects, authenticates, boots, reports statuses and heartbeats."""

from __future__ import annotations

import pytest

from simulator import StationConnectError
from tests.simulator.conftest import StationFactory
from tests.simulator.csms import MiniCsms


async def test_boot_reports_statuses_and_heartbeats(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.heartbeat_interval = 1
    station = make_station(connectors=2, serial_number="SN-1")

    assert await station.start() == "Accepted"

    boot = (await csms.wait_for("BootNotification"))[0]
    assert boot.payload["charge_point_vendor"] == "EvPower"
    assert boot.payload["charge_point_serial_number"] == "SN-1"
    statuses = await csms.wait_for("StatusNotification", count=2)
    assert {(s.payload["connector_id"], s.payload["status"]) for s in statuses} == {
        (1, "Available"),
        (2, "Available"),
    }
    # The interval comes from the BootNotification answer, not from the simulator's default.
    assert station.heartbeat_interval_s == 1
    await csms.wait_for("Heartbeat")


async def test_wrong_password_is_refused_at_the_upgrade(make_station: StationFactory) -> None:
    station = make_station(password="wrong")

    with pytest.raises(StationConnectError) as refused:
        await station.start()

    assert refused.value.http_status == 401


async def test_pending_registration_is_reported(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.registration = "Pending"
    station = make_station()

    assert await station.start() == "Pending"
    assert not station.booted
    assert csms.of("StatusNotification") == []
