"""RemoteStart -> StartTransaction -> MeterValues -> RemoteStop -> StopTransaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp import charge_point
from ocpp.v16 import call

from tests.simulator.conftest import StationFactory
from tests.simulator.csms import MiniCsms, sampled


async def test_remote_start_meters_and_remote_stop(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(meter_start_wh=1_000, power_w=36_000, soc_start_percent=20)
    await station.start()

    answer = await csms.send(
        "EVP-001", call.RemoteStartTransaction(id_tag="sess-abc", connector_id=1)
    )
    assert answer.status == "Accepted"

    start = (await csms.wait_for("StartTransaction"))[0]
    assert start.payload["id_tag"] == "sess-abc"
    assert start.payload["meter_start"] == 1_000
    assert csms.of("Authorize") == []  # remote starts are pre-authorised
    tx = await station.wait_for_transaction()
    samples = await csms.wait_for("MeterValues", count=3)

    # 36 kW for 0.05 s is 0.5 Wh a sample: the register counts every sample exactly.
    registers = [int(sampled(m.payload, "Energy.Active.Import.Register") or 0) for m in samples]
    assert registers == sorted(registers)
    assert registers[-1] > 1_000
    assert sampled(samples[0].payload, "Power.Active.Import") == "36000"
    assert sampled(samples[0].payload, "SoC") is not None
    assert all(m.payload["transaction_id"] == tx.transaction_id for m in samples)

    answer = await csms.send(
        "EVP-001", call.RemoteStopTransaction(transaction_id=tx.transaction_id)
    )
    assert answer.status == "Accepted"
    await station.wait_for_stop(tx)

    stop = csms.of("StopTransaction")[0].payload
    assert stop["transaction_id"] == tx.transaction_id
    assert stop["reason"] == "Remote"
    assert stop["meter_stop"] == tx.meter_stop_wh
    assert tx.energy_wh == stop["meter_stop"] - 1_000 > 0

    def statuses() -> list[str]:
        return [s.payload["status"] for s in csms.of("StatusNotification")]

    await csms.changes.wait_until(lambda: statuses()[-1] == "Available", 5)
    assert statuses() == ["Available", "Preparing", "Charging", "Finishing", "Available"]


async def test_fast_forward_delivers_five_kwh_in_a_few_samples(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(energy_per_sample_wh=1_000)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="fast"))
    tx = await station.wait_for_transaction()

    await station.wait_for_energy(tx, 5_000)

    assert tx.energy_wh % 1_000 == 0


async def test_remote_start_on_a_busy_or_unknown_connector_is_rejected(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station()
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="first", connector_id=1))
    await station.wait_for_transaction()

    busy = await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="second", connector_id=1))
    unknown = await csms.send(
        "EVP-001", call.RemoteStartTransaction(id_tag="third", connector_id=7)
    )
    stop_unknown = await csms.send("EVP-001", call.RemoteStopTransaction(transaction_id=999))

    assert (busy.status, unknown.status, stop_unknown.status) == ("Rejected",) * 3
    assert [m.payload["id_tag"] for m in csms.of("StartTransaction")] == ["first"]


async def test_two_connectors_charge_independently(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(connectors=2)
    await station.start()

    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="left"))
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="right"))
    left = await station.wait_for_transaction(connector_id=1)
    right = await station.wait_for_transaction(connector_id=2)

    assert (left.id_tag, right.id_tag) == ("left", "right")
    assert left.transaction_id != right.transaction_id


async def test_a_full_car_stops_drawing_energy(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(energy_per_sample_wh=400, car_takes_wh=1_000)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="full"))
    tx = await station.wait_for_transaction()

    await station.wait_until(lambda: station.connector(1).status == "SuspendedEV")
    samples = tx.samples_sent
    await station.wait_until(lambda: tx.samples_sent >= samples + 2)

    assert tx.energy_wh == 1_000  # capped, not 1,200
    last = csms.of("MeterValues")[-1].payload
    assert sampled(last, "Power.Active.Import") == "0"
    assert sampled(last, "Energy.Active.Import.Register") == str(tx.meter_start_wh + 1_000)


async def test_statuses_reach_the_central_system_in_the_order_they_happened(
    csms: MiniCsms, make_station: StationFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OCPP library validates a payload (in a thread) before it takes its send lock. A
    # loaded machine once finished Available's validation before Finishing's, and the
    # connector stayed Finishing for ever; here Finishing's validation is made the slow one.
    validate = charge_point.validate_payload

    async def slow_for_finishing(message: Any, version: str) -> None:
        if getattr(message, "payload", {}).get("status") == "Finishing":
            await asyncio.sleep(0.05)
        await validate(message, version)

    monkeypatch.setattr(charge_point, "validate_payload", slow_for_finishing)
    station = make_station()
    await station.start()
    await csms.wait_for("StatusNotification")
    connector = station.connector(1)
    changes = ["Preparing", "Charging", "Finishing", "Available"]
    for status in changes:
        station.set_status(connector, status)

    def statuses() -> list[str]:
        return [s.payload["status"] for s in csms.of("StatusNotification")][1:]

    await csms.changes.wait_until(lambda: len(statuses()) == len(changes), 10)
    assert statuses() == changes
