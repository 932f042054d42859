"""Malformed and invalid frames get the OCPP 1.6 CallError they deserve (or a close), and the
gateway keeps serving that charger and everyone else."""

from __future__ import annotations

import json

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.gateway.conftest import basic_auth, charger_session

pytestmark = pytest.mark.integration

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "One"}

CASES = [
    pytest.param("this is not json", ["-1", "FormationViolation"], id="not-json"),
    pytest.param('{"an": "object"}', ["-1", "ProtocolError"], id="not-an-array"),
    pytest.param('[2, "m1", "Heartbeat"]', ["m1", "ProtocolError"], id="call-too-short"),
    pytest.param('[2, "m2", "Heartbeat", []]', ["m2", "ProtocolError"], id="payload-not-object"),
    pytest.param('[7, "m3", {}]', ["m3", "PropertyConstraintViolation"], id="unknown-type"),
    pytest.param('[2, "m4", "FlyToTheMoon", {}]', ["m4", "NotImplemented"], id="unknown-action"),
    pytest.param(
        '[2, "m5", "RemoteStartTransaction", {"idTag": "x"}]',
        ["m5", "NotSupported"],
        id="csms-only-action",
    ),
    pytest.param(
        json.dumps([2, "m6", "BootNotification", {"chargePointVendor": "Acme"}]),
        ["m6", "ProtocolError"],
        id="missing-required-field",
    ),
    pytest.param(
        json.dumps([2, "m7", "BootNotification", {**BOOT, "chargePointVendor": 5}]),
        ["m7", "TypeConstraintViolation"],
        id="wrong-type",
    ),
    pytest.param(
        json.dumps([2, "m8", "BootNotification", {**BOOT, "surprise": True}]),
        ["m8", "FormationViolation"],
        id="unknown-field",
    ),
    pytest.param(
        json.dumps(
            [
                2,
                "m9",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"},
            ]
        ),
        ["m9", "PropertyConstraintViolation"],
        id="value-outside-enum",
    ),
    pytest.param(
        json.dumps(
            [
                2,
                "m10",
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "x" * 21,
                    "meterStart": 0,
                    "timestamp": "2026-01-01T00:00:00Z",
                },
            ]
        ),
        ["m10", "TypeConstraintViolation"],
        id="string-too-long",
    ),
    pytest.param(
        json.dumps(
            [
                2,
                "m11",
                "StartTransaction",
                {"connectorId": 1, "idTag": "x", "meterStart": 0, "timestamp": "yesterday"},
            ]
        ),
        ["m11", "PropertyConstraintViolation"],
        id="bad-timestamp",
    ),
    pytest.param(
        json.dumps([2, "m12", "MeterValues", {"connectorId": 1, "meterValue": []}]),
        ["m12", "OccurenceConstraintViolation"],
        id="empty-required-list",
    ),
]


@pytest.mark.parametrize(("frame", "expected"), CASES)
async def test_bad_frame_gets_the_right_call_error(gateway, add_station, frame, expected):
    await add_station("EVP-301")
    async with connect(
        gateway.url("EVP-301"),
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=basic_auth("EVP-301", "correct horse battery"),
    ) as socket:
        await socket.send(frame)
        answer = json.loads(await socket.recv())
        assert answer[0] == 4
        assert answer[1:3] == expected
        assert isinstance(answer[3], str)
        assert isinstance(answer[4], dict)
        # The same socket is still served.
        await socket.send(json.dumps([2, "after", "Heartbeat", {}]))
        after = json.loads(await socket.recv())
    assert after[:2] == [3, "after"]
    assert after[2]["currentTime"].endswith("Z")


async def test_oversized_frame_closes_that_socket_only(gateway, add_station):
    await add_station("EVP-302")
    await add_station("EVP-303")
    async with charger_session(gateway.url("EVP-303"), "EVP-303") as bystander:
        async with connect(
            gateway.url("EVP-302"),
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=basic_auth("EVP-302", "correct horse battery"),
            max_size=None,
        ) as socket:
            big = json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 20_000}])
            await socket.send(big)
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
        answer = await bystander.charger.call(call.Heartbeat(), suppress=False)
    assert answer.current_time.endswith("Z")


async def test_garbage_from_one_charger_does_not_disturb_another(gateway, add_station):
    await add_station("EVP-304")
    await add_station("EVP-305")
    async with charger_session(gateway.url("EVP-305"), "EVP-305") as bystander:
        async with connect(
            gateway.url("EVP-304"),
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=basic_auth("EVP-304", "correct horse battery"),
        ) as socket:
            for junk in ("\x00\x01", "[]", "[2]", "null", '[3, "nobody-asked", {}]', "[" * 500):
                await socket.send(junk)
            await socket.send(json.dumps([2, "still-here", "Heartbeat", {}]))
            answers = [json.loads(await socket.recv()) for _ in range(6)]
        assert answers[-1][:2] == [3, "still-here"]
        answer = await bystander.charger.call(call.Heartbeat(), suppress=False)
    assert answer.current_time.endswith("Z")
