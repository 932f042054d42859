"""Many simulated charge points at once, as `evpower simulate` runs them until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class CardScript:
    """A driver with an RFID card at the first station (`evpower simulate --card`): the card is
    presented once the station has booted (Authorize first unless `authorize` is False) and, with
    `stop_after_s`, presented again that long after the charger was accepted, which stops it."""

    id_tag: str
    connector_id: int = 1
    authorize: bool = True
    stop_after_s: float | None = None


async def run_card(station: SimulatedStation, script: CardScript) -> None:
    await station.wait_until(lambda: station.booted, None)
    tx = await station.present_card(script.id_tag, script.connector_id, authorize=script.authorize)
    if tx is None:
        log.warning("%s: card %s refused at Authorize", station.station_id, script.id_tag)
        return
    await station.wait_until(lambda: tx.id_tag_status is not None, None)
    log.info(
        "%s: card %s started transaction %s: %s",
        station.station_id,
        script.id_tag,
        tx.transaction_id,
        tx.id_tag_status,
    )
    if script.stop_after_s is None or tx.id_tag_status != "Accepted":
        return
    await asyncio.sleep(script.stop_after_s)
    if not tx.finished:
        await station.present_card(script.id_tag, script.connector_id)
        log.info("%s: card %s presented again: stopping", station.station_id, script.id_tag)


async def run_fleet(
    configs: Sequence[StationConfig],
    *,
    report_every_s: float = 30.0,
    card: CardScript | None = None,
) -> None:
    """Run every station until cancelled, logging a one-line summary now and then; with
    `card`, a driver presents an RFID card at the first station."""
    stations = [SimulatedStation(config) for config in configs]
    driver: asyncio.Task[None] | None = None
    try:
        for station in stations:
            station.launch()
            await asyncio.sleep(CONNECT_STAGGER_S)
        if card is not None and stations:
            driver = asyncio.create_task(run_card(stations[0], card))
        while True:
            await asyncio.sleep(report_every_s)
            log.info(summary(stations))
    finally:
        if driver is not None:
            driver.cancel()
        await asyncio.gather(*(station.stop() for station in stations), return_exceptions=True)


def summary(stations: Sequence[SimulatedStation]) -> str:
    booted = sum(1 for s in stations if s.booted)
    charging = sum(1 for s in stations for c in s.connectors.values() if c.transaction is not None)
    delivered = sum(tx.energy_wh for s in stations for tx in s.transactions)
    return (
        f"fleet: {booted}/{len(stations)} online, {charging} charging, "
        f"{delivered} Wh delivered so far"
    )
