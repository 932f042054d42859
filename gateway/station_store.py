"""The gateway's database work on stations: their keys, which gateway holds each connection,
boots, last traffic and connector statuses.

Only station/connection tables are written here (never money). Status changes and
online/offline transitions are published with NOTIFY on `station_status` in the same
transaction that records them, so a listener never sees an event the table does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from db.models import Base, Station, StationConnection
from domain.contracts.notify_channels import STATION_STATUS
from gateway.framing import utc_text

_AUTH_COLUMNS = (
    Station.password_hash,
    Station.registration_status,
    Station.previous_password_hash,
    Station.previous_key_expires_at,
)


@dataclass(frozen=True, slots=True)
class StationAuth:
    password_hash: str | None
    registration_status: str  # accepted | pending | rejected
    # The key before the last rotation and until when it still logs in.
    previous_hash: str | None = None
    previous_until: datetime | None = None


_TOUCH = text(
    """
    UPDATE stations AS s SET last_seen_at = v.seen
    FROM unnest(:ids, :seen) AS v(id, seen)
    WHERE s.id = v.id AND (s.last_seen_at IS NULL OR s.last_seen_at < v.seen)
    """
).bindparams(
    bindparam("ids", type_=ARRAY(String)),
    bindparam("seen", type_=ARRAY(TIMESTAMP(timezone=True))),
)


def status_notice(event: str, station_id: str, at: datetime, **fields: Any) -> str:
    return json.dumps({"event": event, "station_id": station_id, "at": utc_text(at), **fields})


async def _notify(connection: AsyncConnection, payload: str) -> None:
    await connection.execute(select(func.pg_notify(STATION_STATUS, payload)))


class StationStore:
    """The stations' side of the gateway's repository; each method is one short transaction.

    Every statement here is Core, so it runs on a pooled connection of the session
    factory's engine rather than through an ORM session: the session machinery (identity
    map, autoflush, unit of work, none of it used here) would dominate the gateway's CPU
    during reconnect storms (docs/benchmarks.md).
    """

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        engine = db_sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the session factory must be bound to an AsyncEngine")
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """For the few read-only queries kept in their own modules (gateway/cards.py)."""
        return self._engine

    async def station_auth(self, station_id: str) -> StationAuth | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(*_AUTH_COLUMNS).where(Station.id == station_id))
            ).first()
        return None if row is None else StationAuth(*row)

    async def stations_auth(self, station_ids: Sequence[str]) -> dict[str, StationAuth]:
        """station_auth for many ids in one query; unknown ids are absent from the result."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(Station.id, *_AUTH_COLUMNS).where(Station.id.in_(station_ids))
            )
        return {row[0]: StationAuth(*row[1:]) for row in rows}

    async def replace_password_hash(self, station_id: str, old: str, new: str) -> bool:
        """Store `new` only if the row still holds `old` (an operator may have re-keyed the
        station meanwhile); True when it was replaced."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(Station)
                .where(Station.id == station_id, Station.password_hash == old)
                .values(password_hash=new)
            )
        return bool(result.rowcount)

    async def disconnect(
        self,
        station_id: str,
        queue: str,
        connected_at: datetime,
        last_seen: datetime,
        at: datetime,
    ) -> bool:
        """Forget this connection unless a newer one (here or elsewhere) already replaced it.
        `at` is when the socket closed (the offline event's time); `last_seen` its last traffic."""
        async with self._engine.begin() as connection:
            gone = (
                await connection.execute(
                    delete(StationConnection)
                    .where(
                        StationConnection.station_id == station_id,
                        StationConnection.gateway_queue == queue,
                        StationConnection.connected_at == connected_at,
                    )
                    .returning(StationConnection.station_id)
                )
            ).first()
            await connection.execute(_TOUCH, {"ids": [station_id], "seen": [last_seen]})
            if gone is not None:
                await _notify(
                    connection,
                    status_notice(
                        "station_offline", station_id, at, last_seen_at=utc_text(last_seen)
                    ),
                )
        return gone is not None

    async def clear_queue(self, queue: str, at: datetime) -> list[str]:
        """Drop every connection row naming `queue` (start-up after a crash, shutdown)."""
        async with self._engine.begin() as connection:
            rows = await connection.execute(
                delete(StationConnection)
                .where(StationConnection.gateway_queue == queue)
                .returning(StationConnection.station_id)
            )
            station_ids = [row[0] for row in rows]
            for station_id in station_ids:
                await _notify(connection, status_notice("station_offline", station_id, at))
        return station_ids

    async def sweep_stale(self, silent_since: datetime, own_queue: str, at: datetime) -> list[str]:
        """Drop connections held by other (possibly dead) gateways whose stations went silent.
        The offline event says when it was declared (`at`) and the station's last traffic."""
        async with self._engine.begin() as connection:
            rows = await connection.execute(
                delete(StationConnection)
                .where(
                    StationConnection.gateway_queue != own_queue,
                    StationConnection.station_id == Station.id,
                    (Station.last_seen_at.is_(None)) | (Station.last_seen_at < silent_since),
                )
                .returning(StationConnection.station_id, Station.last_seen_at)
            )
            station_ids = []
            for station_id, last_seen in rows:
                station_ids.append(station_id)
                seen = {"last_seen_at": utc_text(last_seen)} if last_seen is not None else {}
                await _notify(connection, status_notice("station_offline", station_id, at, **seen))
        return station_ids

    async def touch(self, seen: Mapping[str, datetime]) -> None:
        """Record traffic times for many stations in one statement (batched heartbeats)."""
        if not seen:
            return
        async with self._engine.begin() as connection:
            await connection.execute(_TOUCH, {"ids": list(seen), "seen": list(seen.values())})


def upsert(model: type[Base], values: dict[str, Any], *, key: tuple[str, ...]) -> Insert:
    """INSERT .. ON CONFLICT (key) DO UPDATE every other given column: the newest wins."""
    statement = pg_insert(model).values(**values)
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in values if column not in key},
    )
