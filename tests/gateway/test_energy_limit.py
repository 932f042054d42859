"""The energy limit holds whatever shape of MeterValues a charger sends: without a
transactionId, and with per-phase registers only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call

from gateway.store import GatewayStore
from tests.gateway.conftest import charger_session

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


async def running_transaction(db_sessions, station_id: str, limit_wh: int) -> int:
    """A transaction with an energy limit, as RemoteStart + StartTransaction leave it."""
    store = GatewayStore(db_sessions)
    await store.save_remote_start(station_id, 1, f"tag-{station_id}", limit_wh, START)
    row = await store.start_transaction(station_id, 1, f"tag-{station_id}", 10_000, START)
    return row.id


async def send_meter(connected, sampled: list[dict[str, Any]], **fields: Any) -> None:
    await connected.charger.call(
        call.MeterValues(
            connector_id=1,
            meter_value=[{"timestamp": "2026-01-01T10:30:00Z", "sampled_value": sampled}],
            **fields,
        ),
        suppress=False,
    )


async def test_limit_is_enforced_when_meter_values_name_no_transaction(
    gateway, add_station, db_sessions
):
    await add_station("EVP-701")
    tx_id = await running_transaction(db_sessions, "EVP-701", limit_wh=2_000)
    async with charger_session(gateway.url("EVP-701"), "EVP-701") as connected:
        await send_meter(connected, [{"value": "11000"}])
        assert connected.charger.remote_stops == []
        await send_meter(connected, [{"value": "12000"}])
        await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 10)
    assert connected.charger.remote_stops == [tx_id]


async def test_limit_is_enforced_on_per_phase_registers(gateway, add_station, db_sessions):
    await add_station("EVP-702")
    tx_id = await running_transaction(db_sessions, "EVP-702", limit_wh=3_000)
    phases = [
        {"value": "4400", "phase": "L1"},
        {"value": "4400", "phase": "L2"},
        {"value": "4400", "phase": "L3"},
    ]
    async with charger_session(gateway.url("EVP-702"), "EVP-702") as connected:
        await send_meter(connected, phases, transaction_id=tx_id)
        await asyncio.wait_for(connected.charger.remote_stop_received.wait(), 10)
    assert connected.charger.remote_stops == [tx_id]


async def test_samples_on_an_idle_connector_stop_nothing(gateway, add_station, db_sessions):
    await add_station("EVP-703")
    tx_id = await running_transaction(db_sessions, "EVP-703", limit_wh=1_000)
    await GatewayStore(db_sessions).stop_transaction(
        "EVP-703", tx_id, meter_stop_wh=10_500, stopped_at=START, reason="Local"
    )
    async with charger_session(gateway.url("EVP-703"), "EVP-703") as connected:
        await send_meter(connected, [{"value": "20000"}])
        await connected.charger.call(call.Heartbeat(), suppress=False)
    assert connected.charger.remote_stops == []
