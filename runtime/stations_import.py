"""Onboard a fleet from a CSV file: every station or none, keys written once to a 0600 file.

CSV columns (header row required, in any order): `id`, `connectors`, `price_tyiyn_per_kwh`,
optional `password`. An empty or missing password means "generate one".

Rerun rules (so an interrupted or repeated import is safe):
- a row whose station already exists with the same connector count and price is skipped;
  its key is neither regenerated nor checked (rotation is `evpower stations set-key`);
- a row whose station exists with a different connector count or price refuses the whole
  file (the line is named): an import never silently changes a live station;
- the keys file lists only stations created by this run, and is only written when the run
  creates at least one; it must not exist yet (a previous run's keys are never overwritten).
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Connector, Station
from db.stations_admin import InvalidStationInput, _validate
from domain.charger_keys import ChargerKeys, generate_key
from domain.errors import Conflict, DomainError

REQUIRED_COLUMNS = ("id", "connectors", "price_tyiyn_per_kwh")
OPTIONAL_COLUMNS = ("password",)
# One INSERT statement per this many stations keeps a 10,000-row import to a few round trips.
_BATCH = 500


class InvalidImportFile(DomainError):
    code = "invalid_import"


@dataclass(frozen=True)
class ImportRow:
    line: int  # 1-based line in the file, for the operator's error message
    station_id: str
    connectors: int
    price_tyiyn_per_kwh: int
    password: str | None


@dataclass(frozen=True)
class ImportResult:
    created: tuple[tuple[str, str, bool], ...]  # (station id, key, generated)
    skipped: tuple[str, ...]  # already there with the same connectors and price


def _whole(text: str, column: str, line: int) -> int:
    value = text.strip()
    if not value.isdigit():
        raise InvalidImportFile(
            f"line {line}: {column} must be a whole positive number, got {text!r}"
        )
    return int(value)


def parse_rows(lines: Iterable[str]) -> list[ImportRow]:
    """Every row validated, or InvalidImportFile naming the first bad line."""
    reader = csv.DictReader(lines)
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise InvalidImportFile(f"line 1: header lacks column(s) {', '.join(missing)}")
    unknown = [n for n in header if n not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InvalidImportFile(f"line 1: unknown column(s) {', '.join(unknown)}")
    reader.fieldnames = header
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record or any(record.get(name) is None for name in REQUIRED_COLUMNS):
            raise InvalidImportFile(f"line {line}: expected {len(header)} columns")
        station_id = (record["id"] or "").strip()
        password = (record.get("password") or "").strip() or None
        row = ImportRow(
            line=line,
            station_id=station_id,
            connectors=_whole(record["connectors"], "connectors", line),
            price_tyiyn_per_kwh=_whole(record["price_tyiyn_per_kwh"], "price_tyiyn_per_kwh", line),
            password=password,
        )
        try:
            _validate(
                station_id, row.connectors, row.price_tyiyn_per_kwh, password or generate_key()
            )
        except DomainError as exc:
            raise InvalidImportFile(f"line {line}: {exc.message}") from exc
        if station_id in seen:
            raise InvalidImportFile(
                f"line {line}: station {station_id!r} repeats line {seen[station_id]}"
            )
        seen[station_id] = line
        rows.append(row)
    if not rows:
        raise InvalidImportFile("the file has no stations")
    return rows


async def _existing(session: AsyncSession, ids: list[str]) -> dict[str, tuple[int, int]]:
    """station id -> (connector count, price) for the ids already registered."""
    found: dict[str, tuple[int, int]] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        result = await session.execute(
            select(Station.id, Station.price_tyiyn_per_kwh, func.count(Connector.connector_id))
            .outerjoin(Connector, Connector.station_id == Station.id)
            .where(Station.id.in_(chunk))
            .group_by(Station.id)
        )
        for station_id, price, connectors in result.all():
            found[station_id] = (int(connectors), int(price))
    return found


async def _insert(
    session: AsyncSession, keys: ChargerKeys, rows: list[tuple[ImportRow, str]]
) -> None:
    session.add_all(
        Station(
            id=row.station_id,
            name="",
            price_tyiyn_per_kwh=row.price_tyiyn_per_kwh,
            password_hash=keys.hash(key),
            registration_status="accepted",
        )
        for row, key in rows
    )
    await session.flush()  # the connectors' foreign key needs the station rows first
    session.add_all(
        Connector(station_id=row.station_id, connector_id=number)
        for row, _key in rows
        for number in range(1, row.connectors + 1)
    )
    await session.flush()


def write_keys_file(path: Path, created: Iterable[tuple[str, str, bool]]) -> None:
    """`station_id,password` lines, readable by the owner only; refuses an existing file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(("id", "password"))
        for station_id, key, _generated in created:
            writer.writerow((station_id, key))
        file.flush()
        os.fsync(file.fileno())


async def import_stations(
    db_sessions: async_sessionmaker[AsyncSession],
    keys: ChargerKeys,
    rows: list[ImportRow],
    keys_out: Path,
) -> ImportResult:
    """Create the new stations in one transaction; write their keys to `keys_out` first.

    The keys file is written (and fsynced) before the commit, so a committed station's key
    can never be lost. Conflict names the line of a station that exists with other
    settings; nothing is written then."""
    if await asyncio.to_thread(keys_out.exists):
        raise InvalidImportFile(f"the keys file {str(keys_out)!r} already exists; choose a new one")
    created: list[tuple[str, str, bool]] = []
    skipped: list[str] = []
    try:
        async with db_sessions() as session, session.begin():
            existing = await _existing(session, [row.station_id for row in rows])
            new_rows: list[tuple[ImportRow, str]] = []
            for row in rows:
                known = existing.get(row.station_id)
                if known is not None:
                    if known != (row.connectors, row.price_tyiyn_per_kwh):
                        raise Conflict(
                            f"line {row.line}: station {row.station_id!r} exists with "
                            f"{known[0]} connector(s) at {known[1]} tyiyn/kWh; the file says "
                            f"{row.connectors} at {row.price_tyiyn_per_kwh}"
                        )
                    skipped.append(row.station_id)
                    continue
                key = row.password if row.password is not None else generate_key()
                created.append((row.station_id, key, row.password is None))
                new_rows.append((row, key))
            if not new_rows:
                return ImportResult((), tuple(skipped))
            for start in range(0, len(new_rows), _BATCH):
                await _insert(session, keys, new_rows[start : start + _BATCH])
            # Written and fsynced before the commit: a committed station's key is never lost.
            # Should the commit itself fail, the file names stations that may not exist; the
            # command says so, and a rerun with a new file creates the missing ones.
            write_keys_file(keys_out, created)
    except IntegrityError as exc:  # someone added one of these ids during the import
        raise Conflict(
            "a station of the file was added by someone else during the import; "
            "nothing was imported, rerun it"
        ) from exc
    return ImportResult(tuple(created), tuple(skipped))


__all__ = [
    "ImportResult",
    "ImportRow",
    "InvalidImportFile",
    "InvalidStationInput",
    "import_stations",
    "parse_rows",
    "write_keys_file",
]
