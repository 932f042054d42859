"""Many simulated charge points at once, as `evpower simulate` runs them until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from simulator.config import StationConfig
from simulator.station import SimulatedStation

log = logging.getLogger("simulator")

# Thousands of chargers connecting in the same millisecond is not what a gateway sees after
# a restart either: a small stagger keeps the handshakes (and their logs) readable.
CONNECT_STAGGER_S = 0.005


def station_ids(explicit: Sequence[str], count: int, prefix: str) -> list[str]:
    """The ids given, then `count` generated ones: SIM-0001, SIM-0002, ..."""
    width = max(4, len(str(count)))
    generated = [f"{prefix}{number:0{width}d}" for number in range(1, count + 1)]
    ids = [*explicit, *generated]
    if len(set(ids)) != len(ids):
        raise ValueError("station ids must be unique")
    return ids


def fleet_configs(template: StationConfig, ids: Sequence[str]) -> list[StationConfig]:
    return [replace(template, station_id=station_id) for station_id in ids]


async def run_fleet(configs: Sequence[StationConfig], *, report_every_s: float = 30.0) -> None:
    """Run every station until cancelled, logging a one-line summary now and then."""
    stations = [SimulatedStation(config) for config in configs]
    try:
        for station in stations:
            station.launch()
            await asyncio.sleep(CONNECT_STAGGER_S)
        while True:
            await asyncio.sleep(report_every_s)
            log.info(summary(stations))
    finally:
        await asyncio.gather(*(station.stop() for station in stations), return_exceptions=True)


def summary(stations: Sequence[SimulatedStation]) -> str:
    booted = sum(1 for s in stations if s.booted)
    charging = sum(1 for s in stations for c in s.connectors.values() if c.transaction is not None)
    delivered = sum(tx.energy_wh for s in stations for tx in s.transactions)
    return (
        f"fleet: {booted}/{len(stations)} online, {charging} charging, "
        f"{delivered} Wh delivered so far"
    )
