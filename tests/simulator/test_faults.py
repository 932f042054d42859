"""Fault injection: retried messages with new ids, lost connections, queued stops, hangs."""

from __future__ import annotations

import asyncio
import itertools

from ocpp.v16 import call

from simulator import FaultPlan
from tests.simulator.conftest import StationFactory
from tests.simulator.csms import MiniCsms, sampled


async def test_start_and_stop_are_retried_with_new_message_ids(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(FaultPlan(start_transaction_repeats=2, stop_transaction_repeats=1))
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="retry"))
    tx = await station.wait_for_transaction()
    await station.wait_outbox_empty()

    starts = csms.of("StartTransaction")
    assert len(starts) == 3
    assert len({s.unique_id for s in starts}) == 3
    assert len({repr(s.payload) for s in starts}) == 1  # the same message, resent
    assert tx.assigned_ids == [tx.transaction_id] * 3  # the CSMS recognised it each time

    await csms.send("EVP-001", call.RemoteStopTransaction(transaction_id=tx.transaction_id))
    await station.wait_for_stop(tx)
    await station.wait_outbox_empty()
    stops = csms.of("StopTransaction")
    assert len(stops) == 2
    assert stops[0].unique_id != stops[1].unique_id
    assert stops[0].payload == stops[1].payload


async def test_stop_while_offline_is_sent_after_reconnect(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station()
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="offline"))
    tx = await station.wait_for_transaction()

    await station.drop_connection(reconnect_after_s=None)
    await station.stop_local_transaction(reason="EVDisconnected")
    assert station.outbox_size == 1
    assert not tx.stop_acknowledged

    station.reconnect()
    await station.wait_for_stop(tx)

    assert station.boot_count == 2  # the stop went out only after the new boot
    stop = csms.of("StopTransaction")[0].payload
    assert stop["transaction_id"] == tx.transaction_id
    assert stop["reason"] == "EVDisconnected"
    assert stop["meter_stop"] == tx.meter_stop_wh


async def test_charging_continues_through_a_dropped_connection(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(energy_per_sample_wh=10)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="drop"))
    tx = await station.wait_for_transaction()

    await station.drop_connection(reconnect_after_s=0.2)
    await station.wait_until(lambda: station.boot_count == 2)
    await csms.send("EVP-001", call.RemoteStopTransaction(transaction_id=tx.transaction_id))
    await station.wait_for_stop(tx)

    assert station.connect_count == 2
    assert csms.of("StopTransaction")[0].payload["meter_stop"] == tx.meter_stop_wh


async def test_start_whose_answer_was_lost_is_resent_after_reconnect(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.drop_on_next_start = True
    station = make_station()
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="lost"))

    tx = await station.wait_for_transaction()

    first, second = csms.of("StartTransaction")
    assert first.unique_id != second.unique_id
    assert first.payload == second.payload  # same timestamp: the CSMS can match it
    assert tx.assigned_ids == [tx.transaction_id]


async def test_rejected_and_never_started_remote_starts(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    faults = FaultPlan(reject_remote_start=True)
    station = make_station(faults)
    await station.start()

    rejected = await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="no"))
    faults.reject_remote_start = False
    faults.skip_start_transaction = True
    accepted = await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="silent"))
    await station.wait_until(lambda: station.connector(1).pending_id_tag is None)

    assert (rejected.status, accepted.status) == ("Rejected", "Accepted")
    assert csms.of("StartTransaction") == []
    assert station.connector(1).free


async def test_a_silent_charger_never_answers_remote_start_but_answers_the_rest(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    faults = FaultPlan(silent_remote_start=True)
    station = make_station(faults)
    await station.start()
    csms.chargers["EVP-001"]._response_timeout = 0.5
    try:
        await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="void"))
    except TimeoutError:
        timed_out = True
    else:
        timed_out = False
    config = await csms.send("EVP-001", call.GetConfiguration(key=["HeartbeatInterval"]))

    assert timed_out
    assert ("RemoteStartTransaction", {"unanswered": True}) in station.received
    assert config.configuration_key  # the connection still works
    assert station.connector(1).free and csms.of("StartTransaction") == []


async def test_ignored_remote_stop_keeps_charging(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(FaultPlan(ignore_remote_stop=True), energy_per_sample_wh=5)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="hung"))
    tx = await station.wait_for_transaction()

    answer = await csms.send(
        "EVP-001", call.RemoteStopTransaction(transaction_id=tx.transaction_id)
    )
    energy_then = tx.energy_wh
    await station.wait_for_energy(tx, energy_then + 20)

    assert answer.status == "Accepted"
    assert not tx.finished
    assert csms.of("StopTransaction") == []


async def test_a_stop_the_csms_keeps_refusing_is_given_up_after_three_attempts(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.fail_stops = 5
    station = make_station(transaction_message_attempts=3)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="gives-up"))
    tx = await station.wait_for_transaction()

    await station.stop_local_transaction()
    await station.wait_outbox_empty()

    stops = csms.of("StopTransaction")
    assert len(stops) == 3
    assert len({stop.unique_id for stop in stops}) == 3  # a new message id per attempt
    assert station.given_up_messages == ["StopTransaction"]
    assert station.transaction_message_failures == 3
    assert not tx.stop_acknowledged


async def test_attempts_can_reuse_one_message_id(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.fail_stops = 2
    station = make_station(FaultPlan(retry_with_same_message_id=True))
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="same-id"))
    tx = await station.wait_for_transaction()

    await station.stop_local_transaction()
    await station.wait_for_stop(tx)

    stops = csms.of("StopTransaction")
    assert len(stops) == 3
    assert len({stop.unique_id for stop in stops}) == 1
    assert station.given_up_messages == []


async def test_stop_only_after_a_reconnect(csms: MiniCsms, make_station: StationFactory) -> None:
    station = make_station(FaultPlan(stop_after_reconnect=True))
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="later"))
    tx = await station.wait_for_transaction()

    await station.stop_local_transaction()
    await station.wait_for_stop(tx)

    assert station.connect_count == 2
    boots = [m.action for m in csms.messages if m.action in ("BootNotification", "StopTransaction")]
    assert boots == ["BootNotification", "BootNotification", "StopTransaction"]


async def test_meter_values_duplicated_and_out_of_order(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    faults = FaultPlan(duplicate_meter_values=True, meter_values_out_of_order=True)
    station = make_station(faults, energy_per_sample_wh=10)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="messy"))
    tx = await station.wait_for_transaction()
    await station.wait_until(lambda: tx.samples_sent >= 8)

    registers = [
        sampled(m.payload, "Energy.Active.Import.Register") for m in csms.of("MeterValues")
    ]
    values = [int(value) for value in registers if value is not None]
    assert any(a == b for a, b in itertools.pairwise(values))  # duplicated
    assert any(a > b for a, b in itertools.pairwise(values))  # out of order


async def test_a_ping_only_charger_sends_no_heartbeat(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.heartbeat_interval = 1
    station = make_station(FaultPlan(ping_only=True), ping_interval_s=0.1)
    await station.start()
    await asyncio.sleep(2.5)  # more than two heartbeat intervals

    assert station.connected
    assert csms.of("Heartbeat") == []
