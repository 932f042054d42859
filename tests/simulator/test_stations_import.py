"""`evpower stations import FILE.csv` against a real PostgreSQL: all or nothing, keys once."""

from __future__ import annotations

import argparse
import csv
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Connector, Station
from gateway.auth import ChargerKeys, KeyCheck
from runtime.commands import stations
from runtime.settings import Settings, load_settings

DbSessions = async_sessionmaker[AsyncSession]
PEPPER = "stations-import-tests-pepper-0123456789"
KEYS = ChargerKeys(PEPPER.encode())


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url, ocpp_key_pepper=PEPPER)


async def run_import(settings: Settings, source: Path, keys_out: Path) -> int:
    parser = argparse.ArgumentParser()
    stations.register(parser.add_subparsers())
    args = parser.parse_args(["stations", "import", str(source), "--keys-out", str(keys_out)])
    return await stations.import_command(args, settings)


async def counts(db_sessions: DbSessions) -> tuple[int, int]:
    async with db_sessions() as session:
        n_stations = await session.scalar(select(func.count()).select_from(Station))
        n_connectors = await session.scalar(select(func.count()).select_from(Connector))
    return int(n_stations or 0), int(n_connectors or 0)


def read_keys(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as file:
        return {row["id"]: row["password"] for row in csv.DictReader(file)}


async def test_import_creates_all_and_writes_keys_once_owner_only(
    settings: Settings, db_sessions: DbSessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text(
        "id,connectors,price_tyiyn_per_kwh,password\n"
        "IMP-001,2,1500,\n"
        "IMP-002,1,1200,chosen-password-0002\n"
    )
    keys_out = tmp_path / "keys.csv"

    assert await run_import(settings, source, keys_out) == 0

    assert stat.S_IMODE(keys_out.stat().st_mode) == 0o600
    keys = read_keys(keys_out)
    assert set(keys) == {"IMP-001", "IMP-002"} and keys["IMP-002"] == "chosen-password-0002"
    out = capsys.readouterr().out
    assert "imported 2 station(s)" in out and keys["IMP-001"] not in out
    assert await counts(db_sessions) == (2, 3)
    async with db_sessions() as session:
        for station_id, key in keys.items():
            row = await session.get(Station, station_id)
            assert row is not None and row.password_hash is not None
            assert KEYS.check(key, row.password_hash) is KeyCheck.MATCH


async def test_rerun_skips_identical_stations_and_never_regenerates_keys(
    settings: Settings, db_sessions: DbSessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text("id,connectors,price_tyiyn_per_kwh\nIMP-010,1,1500\n")
    assert await run_import(settings, source, tmp_path / "keys-1.csv") == 0
    first_key = read_keys(tmp_path / "keys-1.csv")["IMP-010"]
    source.write_text("id,connectors,price_tyiyn_per_kwh\nIMP-010,1,1500\nIMP-011,1,900\n")
    capsys.readouterr()

    assert await run_import(settings, source, tmp_path / "keys-2.csv") == 0

    assert "imported 1 station(s), skipped 1" in capsys.readouterr().out
    assert set(read_keys(tmp_path / "keys-2.csv")) == {"IMP-011"}
    async with db_sessions() as session:
        row = await session.get(Station, "IMP-010")
    assert row is not None and row.password_hash is not None
    assert KEYS.check(first_key, row.password_hash) is KeyCheck.MATCH
    # Nothing new: no keys file at all.
    assert await run_import(settings, source, tmp_path / "keys-3.csv") == 0
    assert not (tmp_path / "keys-3.csv").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("IMP-020,1,1500\nIMP-021,0,1500\n", "line 3: connectors must be between"),
        ("IMP-020,1,1500\nIMP-021,1,15.5\n", "line 3: price_tyiyn_per_kwh must be a whole"),
        ("IMP-020,1,1500\nIMP 21,1,1500\n", "line 3: station id"),
        ("IMP-020,1,1500\nIMP-020,1,1500\n", "line 3: station 'IMP-020' repeats line 2"),
        ("IMP-020,1,1500\nIMP-021,1\n", "line 3: expected 3 columns"),
        ("IMP-020,1,1500,short\n", "line 2: password must be 16-40"),
    ],
)
async def test_a_bad_line_is_named_and_nothing_is_imported(
    settings: Settings,
    db_sessions: DbSessions,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: str,
    message: str,
) -> None:
    header = "id,connectors,price_tyiyn_per_kwh" + (",password" if "short" in body else "")
    source = tmp_path / "fleet.csv"
    source.write_text(header + "\n" + body)

    assert await run_import(settings, source, tmp_path / "keys.csv") == stations.EXIT_BAD_INPUT

    error = capsys.readouterr().err
    assert message in error and "nothing was imported" in error
    assert error.count("\n") == 1
    assert await counts(db_sessions) == (0, 0)
    assert not (tmp_path / "keys.csv").exists()


async def test_a_station_with_other_settings_refuses_the_whole_file(
    settings: Settings, db_sessions: DbSessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text("id,connectors,price_tyiyn_per_kwh\nIMP-030,1,1500\n")
    assert await run_import(settings, source, tmp_path / "keys-1.csv") == 0
    source.write_text("id,connectors,price_tyiyn_per_kwh\nIMP-031,1,1500\nIMP-030,2,1500\n")
    capsys.readouterr()

    assert await run_import(settings, source, tmp_path / "keys-2.csv") == 2

    assert "line 3: station 'IMP-030' exists with 1 connector(s)" in capsys.readouterr().err
    assert await counts(db_sessions) == (1, 1)
    assert not (tmp_path / "keys-2.csv").exists()


async def test_an_existing_keys_file_is_never_overwritten(
    settings: Settings, db_sessions: DbSessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text("id,connectors,price_tyiyn_per_kwh\nIMP-040,1,1500\n")
    keys_out = tmp_path / "keys.csv"
    keys_out.write_text("earlier keys\n")

    assert await run_import(settings, source, keys_out) == 2

    assert "already exists" in capsys.readouterr().err
    assert keys_out.read_text() == "earlier keys\n"
    assert await counts(db_sessions) == (0, 0)
