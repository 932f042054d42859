"""Fixtures: a minimal central system on 127.0.0.1 and stations that are stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from simulator import FaultPlan, SimulatedStation, StationConfig
from tests.simulator.csms import MiniCsms

StationFactory = Callable[..., SimulatedStation]


@pytest.fixture
async def csms() -> AsyncIterator[MiniCsms]:
    server = MiniCsms(passwords={"EVP-001": "secret-1"})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_station(csms: MiniCsms) -> AsyncIterator[StationFactory]:
    created: list[SimulatedStation] = []

    def factory(faults: FaultPlan | None = None, **overrides: Any) -> SimulatedStation:
        settings: dict[str, Any] = {
            "station_id": "EVP-001",
            "url": csms.url,
            "password": "secret-1",
            "meter_interval_s": 0.05,
            "reconnect_delay_s": 0.05,
            "transaction_message_retry_s": 0.05,
        }
        settings.update(overrides)
        station = SimulatedStation(StationConfig(**settings), faults)
        created.append(station)
        return station

    yield factory
    for station in created:
        await station.stop()
