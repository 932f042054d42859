"""`evpower stations add|import|list|set-key`: register chargers and see them (live system)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from db.stations_admin import (
    NewStation,
    StationSummary,
    create_station,
    list_stations,
    set_station_key,
)
from domain.errors import DomainError
from domain.money import format_som
from gateway.auth import ChargerKeys
from runtime.cli_database import cli_sessions
from runtime.key_pepper import key_pepper
from runtime.logging import configure_logging
from runtime.settings import Settings, get_settings
from runtime.stations_import import InvalidImportFile, import_stations, parse_rows

EXIT_BAD_INPUT = 2
EXIT_DATABASE = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("stations", help="register and list charging stations")
    actions = parser.add_subparsers(dest="stations_action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="register a station and its charger password")
    add.add_argument("station_id", help="the charger's OCPP identity, e.g. EVP-003")
    # Numbers are parsed by the command, not argparse, so bad input gets one clear line.
    add.add_argument("--connectors", default="1", help="number of connectors (default 1)")
    add.add_argument(
        "--price-tyiyn-per-kwh", required=True, help="price in tyiyn per kWh, e.g. 1500"
    )
    add.add_argument("--password", help="charger password (omit to generate one)")
    add.add_argument("--location", help="id of an existing location")
    add.add_argument("--name", default="", help="display name")
    add.add_argument(
        "--current-type",
        choices=("AC", "DC"),
        help="the connectors' current type; bounds billable energy (default power AC 22 kW, "
        "DC 350 kW; unknown: 350 kW)",
    )
    add.add_argument(
        "--max-power-w", help="the connectors' maximum power in W (default: by current type)"
    )
    add.set_defaults(handler=_add)

    fleet = actions.add_parser(
        "import", help="register a fleet from a CSV file (all or nothing); keys go to a new file"
    )
    fleet.add_argument("file", help="CSV with columns id,connectors,price_tyiyn_per_kwh[,password]")
    fleet.add_argument(
        "--keys-out",
        required=True,
        help="new file (mode 0600) that receives id,password of every station created",
    )
    fleet.set_defaults(handler=_import)

    show = actions.add_parser("list", help="list stations, connectors and connectivity")
    show.set_defaults(handler=_list)

    rekey = actions.add_parser("set-key", help="replace a station's charger key (rotation)")
    rekey.add_argument("station_id", help="the charger's OCPP identity")
    rekey.add_argument("--password", help="the new key (omit to generate one)")
    rekey.set_defaults(handler=_set_key)


def _add(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    return add_command(args, _settings())


def _import(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    return import_command(args, _settings())


def _list(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    return list_command(args, _settings())


def _set_key(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    return set_key_command(args, _settings())


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_format, "WARNING")  # the table is the output
    return settings


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"evpower stations: {message}\n")
    return code


def _whole_number(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{what} must be a whole positive number, got {text!r}")
    return int(text)


async def add_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        connectors = _whole_number(args.connectors, "--connectors")
        price = _whole_number(args.price_tyiyn_per_kwh, "--price-tyiyn-per-kwh")
        power = None
        if getattr(args, "max_power_w", None) is not None:
            power = _whole_number(args.max_power_w, "--max-power-w")
    except ValueError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    keys = ChargerKeys(key_pepper(settings))  # before the database: a missing pepper is one line
    try:
        async with cli_sessions(settings) as sessions:
            created = await create_station(
                sessions,
                keys,
                station_id=args.station_id,
                connectors=connectors,
                price_tyiyn_per_kwh=price,
                password=args.password,
                location_id=args.location,
                name=args.name,
                current_type=getattr(args, "current_type", None),
                max_power_w=power,
            )
    except DomainError as exc:
        return _fail(exc.message, EXIT_BAD_INPUT)
    except (DBAPIError, OSError) as exc:
        return _fail(f"database unavailable: {exc}", EXIT_DATABASE)
    _print_created(created)
    return 0


async def set_key_command(args: argparse.Namespace, settings: Settings) -> int:
    keys = ChargerKeys(key_pepper(settings))
    try:
        async with cli_sessions(settings) as sessions:
            key, generated = await set_station_key(sessions, keys, args.station_id, args.password)
    except DomainError as exc:
        return _fail(exc.message, EXIT_BAD_INPUT)
    except (DBAPIError, OSError) as exc:
        return _fail(f"database unavailable: {exc}", EXIT_DATABASE)
    _say(f"station {args.station_id}: new key stored; the old one no longer logs in")
    if generated:
        _say(f"charger password (shown once, store it in the charger): {key}")
    return 0


async def import_command(args: argparse.Namespace, settings: Settings) -> int:
    keys_out = Path(args.keys_out)
    try:
        text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
        rows = parse_rows(text.splitlines(keepends=True))
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}", EXIT_BAD_INPUT)
    except (InvalidImportFile, UnicodeDecodeError) as exc:
        message = exc.message if isinstance(exc, InvalidImportFile) else "the file is not UTF-8"
        return _fail(f"{args.file}: {message}; nothing was imported", EXIT_BAD_INPUT)
    keys = ChargerKeys(key_pepper(settings))
    try:
        async with cli_sessions(settings) as sessions:
            result = await import_stations(sessions, keys, rows, keys_out)
    except DomainError as exc:
        return _fail(f"{args.file}: {exc.message}; nothing was imported", EXIT_BAD_INPUT)
    except OSError as exc:
        if exc.filename == str(keys_out):  # nothing was committed: the write precedes it
            return _fail(f"cannot write the keys file {keys_out}: {exc.strerror}", EXIT_BAD_INPUT)
        return _fail(f"database unavailable: {exc}", EXIT_DATABASE)
    except DBAPIError as exc:
        note = " (if the keys file was written, check `evpower stations list`)"
        return _fail(f"database unavailable: {exc}{note}", EXIT_DATABASE)
    _say(
        f"imported {len(result.created)} station(s), skipped {len(result.skipped)} "
        "already registered with the same connectors and price"
    )
    if result.created:
        _say(f"charger keys written to {keys_out} (mode 0600); they are not stored anywhere else")
    return 0


def _print_created(created: NewStation) -> None:
    _say(
        f"station {created.station_id} added: {created.connectors} connector(s), "
        f"{format_som(created.price_tyiyn_per_kwh)} som/kWh"
    )
    if created.password_generated:
        _say(f"charger password (shown once, store it in the charger): {created.password}")


async def list_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with cli_sessions(settings) as sessions:
            stations = await list_stations(sessions)
    except (DBAPIError, OSError) as exc:
        return _fail(f"database unavailable: {exc}", EXIT_DATABASE)
    _say(render_table(stations))
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "never"


def render_table(stations: list[StationSummary]) -> str:
    if not stations:
        return "no stations yet: add one with `evpower stations add`"
    header = ("ID", "NAME", "SOM/KWH", "CONNECTORS", "STATE", "LAST SEEN (UTC)")
    rows = [
        (
            s.station_id,
            s.name or "-",
            format_som(s.price_tyiyn_per_kwh),
            " ".join(f"{number}:{status}" for number, status in s.connectors) or "-",
            ("online" if s.online else "offline")
            + ("" if s.registration_status == "accepted" else f" ({s.registration_status})"),
            _when(s.last_seen_at),
        )
        for s in stations
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
