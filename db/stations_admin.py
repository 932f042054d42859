"""Operator actions on stations: register one with its charger key, replace its key, list them.

Shared by the CLI (`evpower stations ...`) and the operations API."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Connector, Location, Station, StationConnection
from domain.charger_keys import ChargerKeys, generate_key
from domain.errors import Conflict, DomainError, NotFound
from domain.sessions import StationNotFound
from domain.tariff import Tariff

# The id is the last path segment of the charger's websocket URL and its HTTP Basic user
# name: URL-safe, no ':' and at most 48 characters (OCPP's chargeBoxIdentity length).
STATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$")
MAX_CONNECTORS = 32
# OCPP security profile 1/2 AuthorizationKey: 16 to 40 characters. Generated keys are
# 24 random URL-safe characters (domain/charger_keys.py): 144 bits, which is what lets the gateway
# check them with one keyed hash instead of a slow KDF.
PASSWORD_LENGTHS = range(16, 41)
# registration_status of a station an operator disabled: the gateway answers its
# BootNotification Rejected and no new session starts on it (activities/sessions.py).
ENABLED_REGISTRATION = "accepted"
DISABLED_REGISTRATION = "rejected"


class InvalidStationInput(DomainError):
    code = "invalid_station"


class LocationNotFound(NotFound):
    code = "location_not_found"


class StationExists(Conflict):
    code = "station_exists"


# The most any connector's configuration may claim (4 MW: megawatt charging for trucks): a typo
# here would let implausible meter readings be billed.
MAX_POWER_W = 4_000_000


@dataclass(frozen=True)
class NewStation:
    station_id: str
    connectors: int
    price_tyiyn_per_kwh: int
    password: str  # plain text: the only moment it exists outside the charger
    password_generated: bool


@dataclass(frozen=True)
class StationSummary:
    station_id: str
    name: str
    location_id: str | None
    price_tyiyn_per_kwh: int
    registration_status: str
    connectors: tuple[tuple[int, str], ...]  # (connector id, last reported status)
    online: bool  # a gateway holds its websocket (station_connections)
    connected_at: datetime | None
    last_seen_at: datetime | None


def _validate(station_id: str, connectors: int, price_tyiyn_per_kwh: int, password: str) -> None:
    if not STATION_ID_PATTERN.match(station_id):
        raise InvalidStationInput(
            f"station id {station_id!r} must be 1-48 letters, digits, '.', '_' or '-'"
        )
    if isinstance(connectors, bool) or not 1 <= connectors <= MAX_CONNECTORS:
        raise InvalidStationInput(f"connectors must be between 1 and {MAX_CONNECTORS}")
    Tariff(price_tyiyn_per_kwh)  # raises InvalidAmount for a non-positive or non-integer price
    if len(password) not in PASSWORD_LENGTHS or not password.isprintable():
        raise InvalidStationInput("password must be 16-40 printable characters")


def validate_new_station(
    station_id: str,
    connectors: int,
    price_tyiyn_per_kwh: int,
    password: str,
    *,
    current_type: str | None = None,
    max_power_w: int | None = None,
) -> None:
    """InvalidStationInput / InvalidAmount for what a station cannot be registered with;
    the operations API asks before it starts the workflow that registers it."""
    _validate(station_id, connectors, price_tyiyn_per_kwh, password)
    if current_type not in (None, "AC", "DC"):
        raise InvalidStationInput("current type must be AC or DC")
    if max_power_w is not None and not 0 < max_power_w <= MAX_POWER_W:
        raise InvalidStationInput(f"max power must be between 1 and {MAX_POWER_W} W")


async def create_station(
    db_sessions: async_sessionmaker[AsyncSession],
    keys: ChargerKeys,
    *,
    station_id: str,
    connectors: int,
    price_tyiyn_per_kwh: int,
    password: str | None = None,
    location_id: str | None = None,
    name: str = "",
    current_type: str | None = None,
    max_power_w: int | None = None,
) -> NewStation:
    """Register an accepted station and its connectors in one transaction.

    Without `password` one is generated; the caller shows `NewStation.password` once,
    only its keyed hash is stored. Raises InvalidStationInput / InvalidAmount for bad
    input, NotFound for an unknown location, Conflict for an existing id; nothing is
    written in any of those cases.
    """
    generated = password is None
    plain = generate_key() if password is None else password
    validate_new_station(
        station_id,
        connectors,
        price_tyiyn_per_kwh,
        plain,
        current_type=current_type,
        max_power_w=max_power_w,
    )
    await register_station(
        db_sessions,
        station_id=station_id,
        connectors=connectors,
        price_tyiyn_per_kwh=price_tyiyn_per_kwh,
        password_hash=keys.hash(plain),
        location_id=location_id,
        name=name,
        current_type=current_type,
        max_power_w=max_power_w,
    )
    return NewStation(station_id, connectors, price_tyiyn_per_kwh, plain, generated)


async def register_station(
    db_sessions: async_sessionmaker[AsyncSession],
    *,
    station_id: str,
    connectors: int,
    price_tyiyn_per_kwh: int,
    password_hash: str,
    location_id: str | None = None,
    name: str = "",
    current_type: str | None = None,
    max_power_w: int | None = None,
) -> bool:
    """Write a validated station whose key is already hashed (the key itself never comes
    here); True when it was there already with this very hash — a retry of the same
    registration, since every hash has its own salt — so nothing is written twice.
    LocationNotFound for an unknown location, StationExists for an id taken otherwise."""
    try:
        async with db_sessions() as session, session.begin():
            if location_id is not None and await session.get(Location, location_id) is None:
                raise LocationNotFound(f"location {location_id!r} does not exist")
            existing = await session.get(Station, station_id)
            if existing is not None:
                if existing.password_hash == password_hash:
                    return True
                raise StationExists(f"station {station_id!r} already exists")
            session.add(
                Station(
                    id=station_id,
                    location_id=location_id,
                    name=name,
                    price_tyiyn_per_kwh=price_tyiyn_per_kwh,
                    password_hash=password_hash,
                    registration_status="accepted",
                )
            )
            await session.flush()  # the connectors' foreign key needs the station row first
            session.add_all(
                Connector(
                    station_id=station_id,
                    connector_id=number,
                    current_type=current_type,
                    max_power_w=max_power_w,
                )
                for number in range(1, connectors + 1)
            )
    except IntegrityError as exc:  # another operator added the same id a moment earlier
        raise StationExists(f"station {station_id!r} already exists") from exc
    return False


async def set_station_key(
    db_sessions: async_sessionmaker[AsyncSession],
    keys: ChargerKeys,
    station_id: str,
    password: str | None = None,
) -> tuple[str, bool]:
    """Replace a station's key (rotation, or a charger that lost it): (key, generated).

    From now on only the new key logs in; a charger connected with the old one keeps its
    socket until it reconnects. NotFound for an unknown station."""
    generated = password is None
    plain = generate_key() if password is None else password
    if len(plain) not in PASSWORD_LENGTHS or not plain.isprintable():
        raise InvalidStationInput("password must be 16-40 printable characters")
    async with db_sessions() as session, session.begin():
        station = await session.get(Station, station_id, with_for_update=True)
        if station is None:
            raise NotFound(f"station {station_id!r} does not exist")
        station.password_hash = keys.hash(plain)
        station.previous_password_hash = None  # replaced outright: the old key is gone now
        station.previous_key_expires_at = None
    return plain, generated


async def rotate_station_key(
    db_sessions: async_sessionmaker[AsyncSession], keys: ChargerKeys, station_id: str, grace_s: int
) -> tuple[str, datetime]:
    """A new generated key for the station; the current one keeps logging in for `grace_s`
    (until the returned time), so the charger can be reconfigured. Rotating again within the
    grace retires the older key at once: only the key being replaced gets a grace."""
    plain = generate_key()
    until, _ = await rotate_station_key_hash(db_sessions, station_id, keys.hash(plain), grace_s)
    return plain, until


async def rotate_station_key_hash(
    db_sessions: async_sessionmaker[AsyncSession], station_id: str, new_hash: str, grace_s: int
) -> tuple[datetime, bool]:
    """`rotate_station_key` for a key hashed by the caller: (the old key's grace end, whether
    this hash was in place already). A retry of the same rotation — same hash, each has its
    own salt — changes nothing: rotating twice would cut the replaced key's grace short."""
    async with db_sessions() as session, session.begin():
        station = await session.get(Station, station_id, with_for_update=True)
        if station is None:
            raise StationNotFound(f"station {station_id!r} does not exist")
        now = await session.scalar(select(func.now()))
        assert now is not None
        if station.password_hash == new_hash:
            return station.previous_key_expires_at or now, True
        until = now + timedelta(seconds=grace_s)
        station.previous_password_hash = station.password_hash
        station.previous_key_expires_at = until if station.password_hash is not None else None
        station.password_hash = new_hash
    return until, False


async def list_stations(db_sessions: async_sessionmaker[AsyncSession]) -> list[StationSummary]:
    """Every station (also pending ones), ordered by id."""
    async with db_sessions() as session:
        rows = (
            await session.execute(
                select(Station, StationConnection.connected_at)
                .outerjoin(StationConnection, StationConnection.station_id == Station.id)
                .order_by(Station.id)
            )
        ).all()
        statuses: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for connector in await session.scalars(
            select(Connector).order_by(Connector.station_id, Connector.connector_id)
        ):
            statuses[connector.station_id].append((connector.connector_id, connector.status))
    return [
        StationSummary(
            station_id=station.id,
            name=station.name,
            location_id=station.location_id,
            price_tyiyn_per_kwh=station.price_tyiyn_per_kwh,
            registration_status=station.registration_status,
            connectors=tuple(statuses[station.id]),
            online=connected_at is not None,
            connected_at=connected_at,
            last_seen_at=station.last_seen_at,
        )
        for station, connected_at in rows
    ]
