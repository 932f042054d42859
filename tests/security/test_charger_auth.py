"""Issue 12 §2: a charger with the right key is always let in.

Station ids are public, so anyone can send wrong keys for any of them, and every charger
behind one NAT shares an address. Neither may lock the real charger out: wrong attempts
may be refused faster, the right key never is. The gateway here is the real one behind
uvicorn, the chargers real websocket clients.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterator, Sequence

import pytest
import structlog
from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus
from sqlalchemy import insert, select
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response
from websockets.typing import Subprotocol

from db.models import Station
from db.stations_admin import create_station
from gateway.auth import SCHEME, KeyCheck, verify_legacy
from gateway.charger_auth import Authenticator, AuthLimits
from gateway.station_store import StationAuth
from gateway.store import GatewayStore
from runtime.key_pepper import data_dir_pepper, key_pepper
from runtime.settings import ConfigError, load_settings
from tests.gateway import conftest as gateway_fixtures
from tests.gateway.conftest import KEYS, PASSWORD, basic_auth, charger_session

pytestmark = pytest.mark.integration

# The gateway tests' fixtures: the real gateway behind uvicorn, stations with keys.
start_gateway = gateway_fixtures.start_gateway
gateway = gateway_fixtures.gateway
add_station = gateway_fixtures.add_station


async def _attempt(url: str, user: str, key: str | None) -> InvalidStatus:
    headers = basic_auth(user, key) if key is not None else {}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            url, subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers, open_timeout=10
        ):
            pass
    return refused.value


async def _boots(url: str, station_id: str) -> RegistrationStatus:
    async with charger_session(url, station_id) as connected:
        boot = await connected.charger.call(
            call.BootNotification(charge_point_vendor="Acme", charge_point_model="One"),
            suppress=False,
        )
    return RegistrationStatus(boot.status)


@pytest.fixture
def uvicorn_records() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn's protocol logger lets through (after the gateway's filter)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("uvicorn.error")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_the_right_key_gets_in_first_try_after_100_wrong_for_its_id_and_1000_from_its_address(
    gateway, add_station
):
    await add_station("EVP-901")
    for number in range(10):
        await add_station(f"EVP-91{number}")
    statuses: set[int] = set()
    for attempt in range(100):  # station ids are public: guesses for the real one
        refused = await _attempt(gateway.url("EVP-901"), "EVP-901", f"guess-{attempt}")
        statuses.add(refused.response.status_code)
    for attempt in range(900):  # the same address tries everyone, known ids or not
        station_id = f"EVP-91{attempt % 10}" if attempt % 2 else f"NOPE-{attempt}"
        refused = await _attempt(gateway.url(station_id), station_id, f"guess-{attempt}")
        statuses.add(refused.response.status_code)
    assert statuses == {401, 429}  # refused, and refused faster once throttled

    # Never verified on this gateway before, from the very address that failed 1,000 times.
    assert await _boots(gateway.url("EVP-901"), "EVP-901") == RegistrationStatus.accepted
    assert await _boots(gateway.url("EVP-915"), "EVP-915") == RegistrationStatus.accepted


async def test_a_flood_of_wrong_keys_costs_about_one_query_a_second_not_one_each(
    db_sessions, add_station
):
    await add_station("EVP-920")
    store = GatewayStore(db_sessions)
    reads: list[Sequence[str]] = []
    real_read = store.stations_auth

    async def counting_read(station_ids: Sequence[str]) -> dict[str, StationAuth]:
        reads.append(station_ids)
        return await real_read(station_ids)

    store.stations_auth = counting_read  # type: ignore[method-assign]
    limits = AuthLimits(failures_per_station=5, throttled_refresh_s=60.0)
    auth = Authenticator(store, KEYS, allow_unknown=False, allow_passwordless=False, limits=limits)
    try:
        for attempt in range(200):
            verdict = await auth.check("EVP-920", ("EVP-920", f"guess-{attempt}"), "192.0.2.9")
            assert verdict.registration is None
        right = await auth.check("EVP-920", ("EVP-920", PASSWORD), "192.0.2.9")
    finally:
        auth.close()
    assert right.registration == "accepted"
    assert len(reads) <= 6  # five counted failures, then the throttled flood reads the cache


async def test_a_fleet_reconnecting_at_once_is_read_in_a_few_queries_and_all_let_in(db_sessions):
    fleet = [f"EVP-R{number:04d}" for number in range(600)]
    stored = KEYS.hash(PASSWORD)
    async with db_sessions.begin() as session:
        await session.execute(
            insert(Station),
            [{"id": sid, "name": sid, "price_tyiyn_per_kwh": 1500, "password_hash": stored}
             for sid in fleet],
        )  # fmt: skip
    store = GatewayStore(db_sessions)
    queries: list[int] = []
    real_read = store.stations_auth

    async def counting_read(station_ids: Sequence[str]) -> dict[str, StationAuth]:
        queries.append(len(station_ids))
        return await real_read(station_ids)

    store.stations_auth = counting_read  # type: ignore[method-assign]
    auth = Authenticator(
        store, KEYS, allow_unknown=False, allow_passwordless=False, limits=AuthLimits()
    )
    try:
        verdicts = await asyncio.gather(
            *(auth.check(sid, (sid, PASSWORD), "100.64.0.1") for sid in fleet)
        )
    finally:
        auth.close()
    assert [verdict.registration for verdict in verdicts] == ["accepted"] * len(fleet)
    assert sum(queries) == len(fleet) and len(queries) <= 4  # batches, not 600 round trips


async def test_unknown_station_and_wrong_key_get_the_same_answer(gateway, add_station):
    await add_station("EVP-930")
    wrong_key = (await _attempt(gateway.url("EVP-930"), "EVP-930", "not-the-key")).response
    unknown = (await _attempt(gateway.url("EVP-939"), "EVP-939", "not-the-key")).response
    no_credentials = (await _attempt(gateway.url("EVP-930"), "EVP-930", None)).response

    def answer(response: Response) -> tuple[int, list[tuple[str, str]], bytes]:  # but the date
        body = bytes(response.body)
        headers = sorted((k.lower(), v) for k, v in response.headers.raw_items() if k != "Date")
        return response.status_code, headers, body

    assert answer(wrong_key) == answer(unknown) == answer(no_credentials)
    assert wrong_key.status_code == 401
    assert wrong_key.body == b"unauthorized"


async def test_a_refusal_is_one_info_line_with_the_reason_and_no_asgi_error(
    gateway, add_station, uvicorn_records
):
    await add_station("EVP-940")
    with structlog.testing.capture_logs() as lines:
        await _attempt(gateway.url("EVP-940"), "EVP-940", "not-the-key")
        await _attempt(gateway.url("EVP-949"), "EVP-949", "not-the-key")
    refusals = [line for line in lines if line["event"] == "charger refused"]
    assert [(line["log_level"], line["reason"]) for line in refusals] == [
        ("info", "wrong key"),
        ("info", "unknown station"),
    ]
    assert [line for line in lines if line["log_level"] in {"warning", "error"}] == []
    assert [r.getMessage() for r in uvicorn_records if r.levelno >= logging.WARNING] == []
    assert not any("WebSocket" in r.getMessage() for r in uvicorn_records)  # no second line


async def test_a_legacy_scrypt_hash_still_lets_its_charger_in_and_is_upgraded(
    gateway, add_station, db_sessions
):
    await add_station("EVP-950", legacy=True)
    assert await _boots(gateway.url("EVP-950"), "EVP-950") == RegistrationStatus.accepted
    async with db_sessions() as session:
        stored = await session.scalar(select(Station.password_hash).where(Station.id == "EVP-950"))
    assert stored is not None and stored.startswith(f"{SCHEME}$")
    assert KEYS.check(PASSWORD, stored) is KeyCheck.MATCH
    assert await _boots(gateway.url("EVP-950"), "EVP-950") == RegistrationStatus.accepted


async def test_generated_keys_are_high_entropy_and_stored_keyed(db_sessions):
    created = [
        await create_station(
            db_sessions, KEYS, station_id=f"EVP-96{n}", connectors=1, price_tyiyn_per_kwh=1500
        )
        for n in range(3)
    ]
    keys = [station.password for station in created]
    assert len(set(keys)) == 3
    assert all(len(key) == 24 and len(base64.urlsafe_b64decode(key)) == 18 for key in keys)
    async with db_sessions() as session:
        stored = (await session.scalars(select(Station.password_hash))).all()
    assert all(value is not None and value.startswith(f"{SCHEME}$") for value in stored)


def test_the_pepper_is_required_with_an_external_database_and_kept_per_data_dir(tmp_path):
    external = load_settings(database_url="postgresql://db.invalid/evpower")
    with pytest.raises(ConfigError, match="OCPP_KEY_PEPPER is required"):
        key_pepper(external)
    with pytest.raises(ConfigError, match="at least 32"):
        key_pepper(load_settings(database_url=external.database_url, ocpp_key_pepper="short"))
    embedded = load_settings(database_url=None, evpower_data_dir=tmp_path)
    first = key_pepper(embedded)
    assert first == key_pepper(embedded) == data_dir_pepper(tmp_path).encode()
    assert len(first) >= 32
    assert (tmp_path / "ocpp-key-pepper").stat().st_mode & 0o077 == 0


async def test_a_flood_on_a_legacy_station_waits_in_its_own_line(db_sessions, add_station):
    """Until its first login upgrades it, a scrypt hash costs real CPU per guess. A flood of
    guesses for one such station queues behind that station only: the shared backlog stays
    free for other stations, and the right key is slowed, not refused."""
    await add_station("EVP-970", legacy=True)
    await add_station("EVP-971", legacy=True)

    def slow_verify(key: str, stored: str) -> bool:
        time.sleep(0.01)  # a slower machine's scrypt
        return verify_legacy(key, stored)

    auth = Authenticator(
        GatewayStore(db_sessions),
        KEYS,
        allow_unknown=False,
        allow_passwordless=False,
        limits=AuthLimits(workers=1, backlog=2),
        legacy_verify=slow_verify,
    )
    try:
        flood = [auth.check("EVP-970", ("EVP-970", f"guess-{n}"), "192.0.2.66") for n in range(40)]
        verdicts = await asyncio.gather(
            *flood,
            auth.check("EVP-971", ("EVP-971", PASSWORD), "192.0.2.71"),
            auth.check("EVP-970", ("EVP-970", PASSWORD), "192.0.2.70"),
        )
    finally:
        auth.close()
    *guesses, neighbour, right = verdicts
    assert {verdict.status for verdict in guesses} <= {401, 429}  # refused, none 503
    assert neighbour.registration == "accepted"
    assert right.registration == "accepted"
