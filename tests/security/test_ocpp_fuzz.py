"""Issue 12 §1 and §7, OCPP side: hostile strings in every field of every action.

Hypothesis puts NUL, control characters, lone surrogates and very long values into each
field (and numbers out of any column's range into the integer ones) of every charger ->
central system action, over a real websocket to the real gateway. Each frame must get a
CallError with the code OCPP 1.6 names for it, never InternalError, and the same socket
must still answer a well-formed Heartbeat afterwards. Nothing reaches a handler, so
nothing reaches the database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from gateway import framing
from gateway.schemas import MAX_FREE_TEXT
from gateway.upgrade import client_address
from tests.gateway import conftest as gateway_fixtures
from tests.gateway.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.integration

start_gateway = gateway_fixtures.start_gateway
add_station = gateway_fixtures.add_station


@pytest.fixture
async def gateway(
    start_gateway: gateway_fixtures.GatewayFactory,
) -> gateway_fixtures.RunningGateway:
    # Production's frame limit (OCPP_MAX_FRAME_BYTES): very long values still fit a frame, so
    # what answers them is the validation, not the 1009 close for an oversized frame.
    return await start_gateway(max_frame_bytes=1024 * 1024)


T = TypeVar("T")

NOW = "2026-11-30T12:00:00Z"
SAMPLE = {
    "value": "1500",
    "context": "Sample.Periodic",
    "format": "Raw",
    "measurand": "Energy.Active.Import.Register",
    "phase": "L1",
    "location": "Outlet",
    "unit": "Wh",
}
# A complete, valid payload of every charger -> central system action the gateway serves.
PAYLOADS: dict[str, dict[str, Any]] = {
    "BootNotification": {
        "chargePointVendor": "Acme",
        "chargePointModel": "One",
        "chargePointSerialNumber": "SN-1",
        "chargeBoxSerialNumber": "BOX-1",
        "firmwareVersion": "1.0.0",
        "iccid": "8999",
        "imsi": "25001",
        "meterType": "AC",
        "meterSerialNumber": "M-1",
    },
    "StatusNotification": {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Available",
        "info": "ok",
        "timestamp": NOW,
        "vendorId": "acme",
        "vendorErrorCode": "E0",
    },
    "Authorize": {"idTag": "04A2B3C4"},
    "StartTransaction": {
        "connectorId": 1,
        "idTag": "04A2B3C4",
        "meterStart": 0,
        "timestamp": NOW,
        "reservationId": 1,
    },
    "StopTransaction": {
        "meterStop": 10,
        "timestamp": NOW,
        "transactionId": 1,
        "reason": "Local",
        "idTag": "04A2B3C4",
        "transactionData": [{"timestamp": NOW, "sampledValue": [SAMPLE]}],
    },
    "MeterValues": {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [{"timestamp": NOW, "sampledValue": [SAMPLE]}],
    },
    "DataTransfer": {"vendorId": "acme", "messageId": "m1", "data": "payload"},
    "DiagnosticsStatusNotification": {"status": "Idle"},
    "FirmwareStatusNotification": {"status": "Idle"},
}

Path = tuple[str | int, ...]


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


FIELDS = [
    (action, path, original)
    for action, payload in PAYLOADS.items()
    for path, original in _leaves(payload)
]


def _replaced(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {
            key: _replaced(item, rest, new) if key == head else item for key, item in value.items()
        }
    return [
        _replaced(item, rest, new) if index == head else item for index, item in enumerate(value)
    ]


PROPERTY = "PropertyConstraintViolation"
TYPE = "TypeConstraintViolation"

_controls = st.one_of(
    st.just("\x00"),
    st.characters(min_codepoint=0x01, max_codepoint=0x1F),
    st.characters(min_codepoint=0x7F, max_codepoint=0x9F),
)
_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8)


@st.composite
def _poisoned(draw: st.DrawFn, bad: st.SearchStrategy[str]) -> str:
    """A short string (fits any field's length) with one forbidden character in it."""
    return draw(_printable) + draw(bad) + draw(_printable)


@st.composite
def _very_long(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=MAX_FREE_TEXT + 1, max_value=60_000))
    return draw(st.sampled_from("0aZ-")) * length


@dataclass(frozen=True)
class Case:
    frame: str
    expected: frozenset[str]
    what: str


@st.composite
def hostile_field(draw: st.DrawFn) -> Case:
    action, path, original = draw(st.sampled_from(FIELDS))
    kind = draw(st.sampled_from(["nul-or-control", "surrogate", "very-long", "number"]))
    if kind == "nul-or-control":
        value: Any = draw(_poisoned(_controls))
    elif kind == "surrogate":
        value = draw(_poisoned(_surrogates))
    elif kind == "very-long":
        value = draw(_very_long())
    else:
        value = draw(
            st.one_of(
                st.integers(min_value=2**63, max_value=2**200),
                st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
                st.floats(allow_nan=False, allow_infinity=False).filter(
                    lambda f: not f.is_integer()
                ),
            )
        )
    if isinstance(original, int):
        # A string or a fraction where an integer belongs is a type error; an integer no
        # column can hold is a value out of range.
        expected = {PROPERTY} if isinstance(value, int) else {TYPE}
    elif isinstance(value, str) and kind != "very-long":
        expected = {PROPERTY}  # a forbidden character (in an enum or a time, a bad value too)
    elif isinstance(value, str):
        expected = {TYPE, PROPERTY}  # too long for a free text; not one of an enum's values
    else:
        expected = {TYPE}  # a number where text belongs
    payload = _replaced(PAYLOADS[action], path, value)
    unique_id = f"fz-{uuid.uuid4().hex[:12]}"
    # ensure_ascii: a lone surrogate travels as a \\ud800 escape, as a broken charger sends it.
    frame = json.dumps([2, unique_id, action, payload])
    return Case(frame, frozenset(expected), f"{action}.{'.'.join(map(str, path))} <- {kind}")


@st.composite
def hostile_envelope(draw: st.DrawFn) -> Case:
    """The frame's own strings: the unique id (echoed back) and the action name."""
    bad = draw(st.one_of(_poisoned(_controls), _poisoned(_surrogates), _very_long()))
    if draw(st.booleans()):
        return Case(json.dumps([2, bad, "Heartbeat", {}]), frozenset({"ProtocolError"}), "id")
    frame = json.dumps([2, f"fz-{uuid.uuid4().hex[:12]}", bad, {}])
    return Case(frame, frozenset({"NotImplemented"}), "action")


HEARTBEAT = '[2,"alive","Heartbeat",{}]'


async def _exchange(socket: ClientConnection, frame: str) -> list[Any]:
    await socket.send(frame)
    answer = json.loads(await asyncio.wait_for(socket.recv(), 30))
    assert isinstance(answer, list)
    return answer


async def _charger(url: str, station_id: str) -> ClientConnection:
    return await connect(
        url,
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=basic_auth(station_id, PASSWORD),
        open_timeout=10,
        max_size=2**22,
    )


def _runner(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[T]], T]:
    """Hypothesis drives examples from a worker thread; the socket lives on the test's loop."""

    def run(work: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(60)

    return run


async def test_hostile_strings_in_every_field_get_the_matching_call_error(gateway, add_station):
    await add_station("EVP-FUZZ-1")
    socket = await _charger(gateway.url("EVP-FUZZ-1"), "EVP-FUZZ-1")
    run = _runner(asyncio.get_running_loop())
    seen: set[str] = set()

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=st.one_of(hostile_field(), hostile_field(), hostile_field(), hostile_envelope()))
    def check(case: Case) -> None:
        answer = run(_exchange(socket, case.frame))
        assert answer[0] == 4, (case.what, answer)
        assert answer[2] != "InternalError", (case.what, answer)
        assert answer[2] in case.expected, (case.what, answer)
        seen.add(case.what.split(" <- ")[0])
        alive = run(_exchange(socket, HEARTBEAT))
        assert alive[:2] == [3, "alive"], (case.what, alive)

    try:
        await asyncio.to_thread(check)
    finally:
        await socket.close()
    assert len(seen) > len(PAYLOADS)  # many fields were hit, not one over and over


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param("[" * 200_000 + "]" * 200_000, "FormationViolation", id="nested-too-deep"),
        pytest.param('[2,"n1","StatusNotification",{"connectorId":NaN}]', "FormationViolation"),
        pytest.param(
            json.dumps(
                [
                    2,
                    "t1",
                    "StartTransaction",
                    {**PAYLOADS["StartTransaction"], "timestamp": "0001-01-01T00:00:00+01:00"},
                ]
            ),
            PROPERTY,
            id="time-before-year-1-in-utc",
        ),
        pytest.param(
            json.dumps([2, "i1", "Authorize", {"idTag": "tag with space"}]),
            PROPERTY,
            id="id-tag-outside-its-pattern",
        ),
        pytest.param(
            json.dumps([2, "i2", "Authorize", {"idTag": "ÄÖÜ"}]), PROPERTY, id="id-tag-not-ascii"
        ),
        pytest.param(
            json.dumps(
                [2, "m1", "MeterValues", {**PAYLOADS["MeterValues"], "transactionId": 2**31}]
            ),
            PROPERTY,
            id="transaction-id-beyond-int4",
        ),
        pytest.param(
            '[2,"' + "\\ud800" + '","Heartbeat",{}]', "ProtocolError", id="surrogate-unique-id"
        ),
    ],
)
async def test_frames_no_parser_or_column_can_take_get_a_call_error(
    gateway, add_station, frame, code
):
    await add_station("EVP-FUZZ-2")
    socket = await _charger(gateway.url("EVP-FUZZ-2"), "EVP-FUZZ-2")
    try:
        answer = await _exchange(socket, frame)
        assert answer[0] == 4 and answer[2] == code, answer
        assert (await _exchange(socket, HEARTBEAT))[:2] == [3, "alive"]
    finally:
        await socket.close()


async def test_an_integral_float_is_an_integer_not_an_internal_error(gateway, add_station):
    await add_station("EVP-FUZZ-3")
    socket = await _charger(gateway.url("EVP-FUZZ-3"), "EVP-FUZZ-3")
    status = {"connectorId": 1.0, "errorCode": "NoError", "status": "Available"}
    try:
        answer = await _exchange(socket, json.dumps([2, "f1", "StatusNotification", status]))
    finally:
        await socket.close()
    assert answer == [3, "f1", {}]


@pytest.mark.parametrize("station_id", ["EVP%00", "EVP%0A1", "EVP%ED%A0%80", "%C3%84VP", "E" * 65])
async def test_a_station_id_outside_its_pattern_is_refused_at_the_upgrade(gateway, station_id):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://127.0.0.1:{gateway.port}/ws/{station_id}",
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=basic_auth("EVP", PASSWORD),
            open_timeout=10,
        ):
            pass
    assert refused.value.response.status_code == 404


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (("203.0.113.7", 51234), ("203.0.113.7", "203.0.113.7:51234")),
        (("2001:db8::1", 443), ("2001:db8::1", "2001:db8::1:443")),
        (("x" * 500, 1), (None, None)),  # a forwarded "address" no column can hold
        (("10.0.0.1\x00", 1), (None, None)),
        (("unknown", 0), (None, None)),
        (None, (None, None)),
    ],
)
def test_only_an_ip_literal_from_x_forwarded_for_is_taken_as_the_address(client, expected):
    assert client_address(client) == expected


def test_a_chargers_call_error_text_is_made_printable_before_it_travels_on():
    frame = '[4,"c1","Internal\\u0000Error","bad \\ud800 text",{"k":"\\ud800"}]'
    error = framing.parse_frame(frame)
    assert isinstance(error, framing.IncomingError)
    assert (error.code, error.description, error.details) == (
        "Internal\ufffdError",
        "bad \ufffd text",
        {},
    )
    error.to_exception().description.encode("utf-8")  # no lone surrogate left to fail on
