"""RFID cards at the simulated charger: Authorize, a local start from the tag, the same card
presented again stops the transaction; a refused card starts nothing."""

from __future__ import annotations

import asyncio
import contextlib

from simulator import StationConfig
from simulator.fleet import CardScript, run_fleet
from tests.simulator.conftest import StationFactory
from tests.simulator.csms import MiniCsms


async def test_card_authorized_starts_and_the_same_card_stops(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.tags["04A2B3C4D5"] = "Accepted"
    station = make_station()
    await station.start()

    tx = await station.present_card("04A2B3C4D5", connector_id=1)
    assert tx is not None
    assert [m.payload["id_tag"] for m in csms.of("Authorize")] == ["04A2B3C4D5"]
    start = (await csms.wait_for("StartTransaction"))[0].payload
    assert (start["id_tag"], start["connector_id"]) == ("04A2B3C4D5", 1)
    running = await station.wait_for_transaction(connector_id=1)
    assert running is tx

    # The reader compares idTags without regard to case, as OCPP 1.6 does.
    stopped = await station.present_card("04a2b3c4d5", connector_id=1)
    assert stopped is tx
    await station.wait_for_stop(tx)
    stop = csms.of("StopTransaction")[0].payload
    assert (stop["transaction_id"], stop["reason"], stop["id_tag"]) == (
        tx.transaction_id,
        "Local",
        "04A2B3C4D5",
    )
    assert len(csms.of("Authorize")) == 1  # stopping with the starting card needs none


async def test_refused_card_starts_nothing_and_a_local_start_skips_authorize(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.tags["BLOCKED01"] = "Blocked"
    station = make_station()
    await station.start()

    assert await station.authorize("UNKNOWN01") == "Invalid"
    assert await station.present_card("BLOCKED01") is None
    assert csms.of("StartTransaction") == []

    tx = await station.present_card("CARD0002", authorize=False)
    assert tx is not None
    await csms.wait_for("StartTransaction")
    assert [m.payload["id_tag"] for m in csms.of("Authorize")] == ["UNKNOWN01", "BLOCKED01"]


async def test_the_fleet_runs_a_card_driver_who_starts_and_stops_at_the_first_station(
    csms: MiniCsms,
) -> None:
    """`evpower simulate --card TAG --card-seconds S` as a library call."""
    csms.tags["04CAFE"] = "Accepted"
    config = StationConfig(
        station_id="EVP-001",
        url=csms.url,
        password="secret-1",
        meter_interval_s=0.05,
        energy_per_sample_wh=10,
    )
    fleet = asyncio.create_task(
        run_fleet([config], card=CardScript("04CAFE", stop_after_s=0.2), report_every_s=60)
    )
    try:
        stops = await csms.wait_for("StopTransaction")
    finally:
        fleet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fleet
    assert [m.payload["id_tag"] for m in csms.of("Authorize")] == ["04CAFE"]
    assert csms.of("StartTransaction")[0].payload["id_tag"] == "04CAFE"
    assert (stops[0].payload["reason"], stops[0].payload["id_tag"]) == ("Local", "04CAFE")
