"""`evpower stations add|list` against a real PostgreSQL, including the refusals."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Connector, Location, Station, StationConnection
from gateway.auth import ChargerKeys, KeyCheck
from runtime.commands import stations
from runtime.settings import Settings, load_settings

DbSessions = async_sessionmaker[AsyncSession]


PEPPER = "stations-cli-tests-pepper-0123456789"
KEYS = ChargerKeys(PEPPER.encode())


def verify_password(key: str, stored: str) -> bool:
    return KEYS.check(key, stored) is KeyCheck.MATCH


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url, ocpp_key_pepper=PEPPER)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    stations.register(parser.add_subparsers())
    return parser.parse_args(["stations", *argv])


async def add(settings: Settings, *argv: str) -> int:
    return await stations.add_command(parse("add", *argv), settings)


async def count_stations(db_sessions: DbSessions) -> int:
    async with db_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Station)) or 0)


async def test_add_stores_a_hash_and_the_connectors(
    settings: Settings, db_sessions: DbSessions, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await add(
        settings, "EVP-003", "--connectors", "2", "--price-tyiyn-per-kwh", "1500",
        "--password", "charger-secret-3", "--name", "Osh Bazaar",
    )  # fmt: skip

    assert code == 0
    output = capsys.readouterr().out
    assert "EVP-003 added: 2 connector(s), 15.00 som/kWh" in output
    assert "charger-secret-3" not in output  # a password the operator chose is not echoed
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-003")
        connectors = (await session.scalars(select(Connector.connector_id))).all()
    assert station is not None and station.password_hash is not None
    assert station.password_hash != "charger-secret-3"
    assert verify_password("charger-secret-3", station.password_hash)
    assert (station.price_tyiyn_per_kwh, station.name) == (1500, "Osh Bazaar")
    assert sorted(connectors) == [1, 2]


async def test_add_without_password_prints_a_generated_one_once(
    settings: Settings, db_sessions: DbSessions, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await add(settings, "EVP-004", "--price-tyiyn-per-kwh", "1200") == 0

    lines = capsys.readouterr().out.splitlines()
    password = lines[-1].rsplit(" ", 1)[-1]
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-004")
    assert station is not None and station.password_hash is not None
    assert verify_password(password, station.password_hash)
    assert len(password) >= 16


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--price-tyiyn-per-kwh", "15.5"), "--price-tyiyn-per-kwh must be a whole positive"),
        (("--price-tyiyn-per-kwh", "0"), "price_tyiyn_per_kwh must be positive"),
        (("--price-tyiyn-per-kwh", "-3"), "--price-tyiyn-per-kwh must be a whole positive"),
        (("--price-tyiyn-per-kwh", "1500", "--connectors", "0"), "connectors must be between"),
        (("--price-tyiyn-per-kwh", "1500", "--password", "short"), "password must be 16-40"),
        (("--price-tyiyn-per-kwh", "1500", "--location", "nowhere"), "location 'nowhere'"),
    ],
)
async def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    settings: Settings,
    db_sessions: DbSessions,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    code = await add(settings, "EVP-005", *argv)

    error = capsys.readouterr().err
    assert code == 2
    assert message in error
    assert error.count("\n") == 1
    assert await count_stations(db_sessions) == 0


async def test_bad_station_id_is_refused(
    settings: Settings, db_sessions: DbSessions, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await add(settings, "EVP 6/x", "--price-tyiyn-per-kwh", "1500") == 2
    assert "station id" in capsys.readouterr().err
    assert await count_stations(db_sessions) == 0


async def test_duplicate_id_is_refused_and_keeps_the_first(
    settings: Settings, db_sessions: DbSessions, capsys: pytest.CaptureFixture[str]
) -> None:
    await add(
        settings, "EVP-007", "--price-tyiyn-per-kwh", "1500", "--password", "first-password-007"
    )
    capsys.readouterr()

    code = await add(
        settings, "EVP-007", "--price-tyiyn-per-kwh", "900", "--password", "other-password-007"
    )

    assert code == 2
    assert capsys.readouterr().err == "evpower stations: station 'EVP-007' already exists\n"
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-007")
    assert station is not None and station.password_hash is not None
    assert station.price_tyiyn_per_kwh == 1500
    assert verify_password("first-password-007", station.password_hash)


async def test_list_shows_price_connectors_and_connectivity(
    settings: Settings, db_sessions: DbSessions, capsys: pytest.CaptureFixture[str]
) -> None:
    async with db_sessions() as session, session.begin():
        session.add(Location(id="osh", name="Osh"))
    await add(settings, "EVP-010", "--price-tyiyn-per-kwh", "1550", "--connectors", "2",
              "--location", "osh", "--name", "Osh DC")  # fmt: skip
    await add(settings, "EVP-011", "--price-tyiyn-per-kwh", "1200")
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with db_sessions() as session, session.begin():
        connector = await session.get(Connector, ("EVP-010", 2))
        station = await session.get(Station, "EVP-010")
        assert connector is not None and station is not None
        connector.status = "Charging"
        station.last_seen_at = seen
        session.add(
            StationConnection(station_id="EVP-010", gateway_queue="gateway-a", connected_at=seen)
        )
    capsys.readouterr()

    assert await stations.list_command(parse("list"), settings) == 0

    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "ID",
        "NAME",
        "SOM/KWH",
        "CONNECTORS",
        "STATE",
        "LAST",
        "SEEN",
        "(UTC)",
    ]
    assert first.split()[:2] == ["EVP-010", "Osh"]
    assert "15.50" in first and "online" in first and "2026-01-02 03:04:05Z" in first
    assert "2:Charging" in first
    assert second.split()[0] == "EVP-011"
    assert "offline" in second and "never" in second


async def test_set_key_replaces_the_stored_key(
    settings: Settings, db_sessions: DbSessions, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await add(settings, "EVP-KEY", "--price-tyiyn-per-kwh", "1500",
                     "--password", "old-charger-key-01") == 0  # fmt: skip
    code = await stations.set_key_command(parse("set-key", "EVP-KEY"), settings)
    assert code == 0
    new_key = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    async with db_sessions() as session:
        row = await session.get(Station, "EVP-KEY")
    assert row is not None and row.password_hash is not None
    stored = row.password_hash
    assert verify_password(new_key, stored)
    assert not verify_password("old-charger-key-01", stored)
    unknown = await stations.set_key_command(parse("set-key", "EVP-NONE"), settings)
    assert unknown == stations.EXIT_BAD_INPUT
