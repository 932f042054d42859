"""The simulator answers the other CSMS commands the way a real charger would."""

from __future__ import annotations

from ocpp.v16 import call

from tests.simulator.conftest import StationFactory
from tests.simulator.csms import MiniCsms


async def test_change_availability_now_or_after_the_transaction(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station(connectors=2)
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="busy", connector_id=2))
    tx = await station.wait_for_transaction()

    idle = await csms.send("EVP-001", call.ChangeAvailability(connector_id=1, type="Inoperative"))
    busy = await csms.send("EVP-001", call.ChangeAvailability(connector_id=2, type="Inoperative"))
    refused = await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="late", connector_id=1))
    await csms.send("EVP-001", call.RemoteStopTransaction(transaction_id=tx.transaction_id))
    await station.wait_for_stop(tx)

    assert (idle.status, busy.status, refused.status) == ("Accepted", "Scheduled", "Rejected")
    assert station.connector(1).status == "Unavailable"
    assert station.connector(2).status == "Unavailable"  # applied once charging ended

    back = await csms.send("EVP-001", call.ChangeAvailability(connector_id=0, type="Operative"))
    assert back.status == "Accepted"
    assert {c.status for c in station.connectors.values()} == {"Available"}


async def test_configuration_read_and_write(csms: MiniCsms, make_station: StationFactory) -> None:
    station = make_station(connectors=2)
    await station.start()

    read = await csms.send(
        "EVP-001", call.GetConfiguration(key=["NumberOfConnectors", "NoSuchKey"])
    )
    writable = await csms.send(
        "EVP-001", call.ChangeConfiguration(key="HeartbeatInterval", value="90")
    )
    readonly = await csms.send(
        "EVP-001", call.ChangeConfiguration(key="NumberOfConnectors", value="5")
    )
    garbage = await csms.send(
        "EVP-001", call.ChangeConfiguration(key="HeartbeatInterval", value="x")
    )
    unknown = await csms.send("EVP-001", call.ChangeConfiguration(key="NoSuchKey", value="1"))

    assert read.configuration_key == [{"key": "NumberOfConnectors", "readonly": True, "value": "2"}]
    assert read.unknown_key == ["NoSuchKey"]
    statuses = (writable.status, readonly.status, garbage.status, unknown.status)
    assert statuses == ("Accepted", "Rejected", "Rejected", "NotSupported")
    assert station.heartbeat_interval_s == 90


async def test_trigger_message_sends_what_was_asked(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station()
    await station.start()
    await csms.wait_for("StatusNotification")

    status = await csms.send(
        "EVP-001", call.TriggerMessage(requested_message="StatusNotification", connector_id=1)
    )
    heartbeat = await csms.send("EVP-001", call.TriggerMessage(requested_message="Heartbeat"))
    wrong = await csms.send(
        "EVP-001", call.TriggerMessage(requested_message="Heartbeat", connector_id=9)
    )

    assert (status.status, heartbeat.status, wrong.status) == ("Accepted", "Accepted", "Rejected")
    await csms.wait_for("StatusNotification", count=2)
    await csms.wait_for("Heartbeat")


async def test_unlock_during_charging_ends_the_transaction(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station()
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="unlock"))
    tx = await station.wait_for_transaction()

    unlocked = await csms.send("EVP-001", call.UnlockConnector(connector_id=1))
    missing = await csms.send("EVP-001", call.UnlockConnector(connector_id=3))
    await station.wait_for_stop(tx)

    assert (unlocked.status, missing.status) == ("Unlocked", "NotSupported")
    assert csms.of("StopTransaction")[0].payload["reason"] == "UnlockCommand"


async def test_reset_stops_charging_and_boots_again(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    station = make_station()
    await station.start()
    await csms.send("EVP-001", call.RemoteStartTransaction(id_tag="reset"))
    tx = await station.wait_for_transaction()

    answer = await csms.send("EVP-001", call.Reset(type="Soft"))
    await station.wait_until(lambda: station.boot_count == 2)

    assert answer.status == "Accepted"
    assert tx.stop_acknowledged
    assert csms.of("StopTransaction")[0].payload["reason"] == "SoftReset"
    assert [m.action for m in csms.messages].index("StopTransaction") < max(
        i for i, m in enumerate(csms.messages) if m.action == "BootNotification"
    )
