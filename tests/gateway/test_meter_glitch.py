"""The energy-limit watch over a real websocket counts only meter steps that can have
happened: a glitch sample neither stops a session nor lets one pass its limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.v16 import call

from tests.gateway.conftest import charger_session
from tests.gateway.test_energy_limit import running_transaction

pytestmark = pytest.mark.integration


async def sample(connected: Any, tx_id: int, at: str, value: str, unit: str = "Wh") -> None:
    await connected.charger.call(
        call.MeterValues(
            connector_id=1,
            transaction_id=tx_id,
            meter_value=[
                {
                    "timestamp": f"2026-01-01T{at}Z",
                    "sampled_value": [{"value": value, "unit": unit}],
                }
            ],
        ),
        suppress=False,
    )


async def test_a_glitch_sample_does_not_stop_the_session_and_the_limit_still_holds(
    gateway, add_station, db_sessions
):
    await add_station("EVP-791")
    tx_id = await running_transaction(db_sessions, "EVP-791", limit_wh=2_000)  # meterStart 10000
    async with charger_session(gateway.url("EVP-791"), "EVP-791") as connected:
        await sample(connected, tx_id, "10:00:01", "999999999")  # a gigawatt-hour in a second
        await sample(connected, tx_id, "10:30:00", "11000")
        await connected.charger.call(call.Heartbeat(), suppress=False)
        assert connected.charger.remote_stops == []
        await sample(connected, tx_id, "10:45:00", "12.5", unit="kWh")
        await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 10)
    assert connected.charger.remote_stops == [tx_id]


async def test_a_register_reset_does_not_let_the_session_pass_its_limit(
    gateway, add_station, db_sessions
):
    await add_station("EVP-792")
    tx_id = await running_transaction(db_sessions, "EVP-792", limit_wh=2_000)
    async with charger_session(gateway.url("EVP-792"), "EVP-792") as connected:
        await sample(connected, tx_id, "10:10:00", "11000")  # 1000 Wh counted
        await sample(connected, tx_id, "10:20:00", "0")  # the meter rebooted
        await connected.charger.call(call.Heartbeat(), suppress=False)
        assert connected.charger.remote_stops == []
        await sample(connected, tx_id, "10:30:00", "1200")  # 1000 + 1200 >= 2000
        await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 10)
    assert connected.charger.remote_stops == [tx_id]
