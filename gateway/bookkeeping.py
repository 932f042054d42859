"""Connect, BootNotification and StatusNotification bookkeeping of many chargers, written
together: one database transaction per batch instead of one (and one pooled connection)
per message, so a fleet reconnecting after a deploy costs the gateway a few transactions a
second, not thousands (docs/benchmarks.md, reconnect storm).

Each caller still waits until its own record is committed, so what a charger is answered
(Accepted, the command routing row) is in the database first. A record asked for while a
batch is being written waits for the next one; a charger alone waits for nothing but a task
hop. Records of stations deleted meanwhile are skipped, so one of them cannot fail the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Boolean, DateTime, Integer, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.contracts.notify_channels import STATION_STATUS
from domain.sessions import FINAL_STATE_VALUES
from gateway import wake
from gateway.backlog import once_more_if_stale
from gateway.station_store import status_notice

_TEXTS = ARRAY(String)
_TIMES = ARRAY(DateTime(timezone=True))

_CONNECTIONS = text(
    """
    INSERT INTO station_connections (station_id, gateway_queue, connected_at, remote_address)
    SELECT v.id, :queue, v.at, v.remote
    FROM unnest(:ids, :ats, :remotes) AS v(id, at, remote)
    WHERE EXISTS (SELECT 1 FROM stations AS s WHERE s.id = v.id)
    ORDER BY v.id
    ON CONFLICT (station_id) DO UPDATE SET gateway_queue = excluded.gateway_queue,
        connected_at = excluded.connected_at, remote_address = excluded.remote_address
    """
).bindparams(
    bindparam("ids", type_=_TEXTS),
    bindparam("ats", type_=_TIMES),
    bindparam("remotes", type_=_TEXTS),
)

# Connects and boots of one station in a batch are one row: PostgreSQL updates a row once
# per statement. A station's boot data is replaced only by a boot (`booted`).
_STATIONS = text(
    """
    UPDATE stations AS s SET
        last_seen_at = GREATEST(s.last_seen_at, v.seen),
        vendor = CASE WHEN v.booted THEN v.vendor ELSE s.vendor END,
        model = CASE WHEN v.booted THEN v.model ELSE s.model END,
        serial_number = CASE WHEN v.booted THEN v.serial ELSE s.serial_number END,
        firmware_version = CASE WHEN v.booted THEN v.firmware ELSE s.firmware_version END
    FROM unnest(:ids, :seen, :booted, :vendors, :models, :serials, :firmwares)
        AS v(id, seen, booted, vendor, model, serial, firmware)
    WHERE s.id = v.id
    """
).bindparams(
    bindparam("ids", type_=_TEXTS),
    bindparam("seen", type_=_TIMES),
    bindparam("booted", type_=ARRAY(Boolean)),
    bindparam("vendors", type_=_TEXTS),
    bindparam("models", type_=_TEXTS),
    bindparam("serials", type_=_TEXTS),
    bindparam("firmwares", type_=_TEXTS),
)

_CONNECTORS = text(
    """
    INSERT INTO connectors (station_id, connector_id, status, error_code, status_at)
    SELECT v.id, v.connector, v.status, v.error, v.at
    FROM unnest(:ids, :connectors, :statuses, :errors, :ats)
        AS v(id, connector, status, error, at)
    WHERE EXISTS (SELECT 1 FROM stations AS s WHERE s.id = v.id)
    ORDER BY v.id, v.connector
    ON CONFLICT (station_id, connector_id) DO UPDATE SET status = excluded.status,
        error_code = excluded.error_code, status_at = excluded.status_at
    """
).bindparams(
    bindparam("ids", type_=_TEXTS),
    bindparam("connectors", type_=ARRAY(Integer)),
    bindparam("statuses", type_=_TEXTS),
    bindparam("errors", type_=_TEXTS),
    bindparam("ats", type_=_TIMES),
)

# In the order given: a listener sees a station online before its connectors' statuses.
_NOTIFY = text(
    "SELECT count(pg_notify(:channel, p.payload)) FROM unnest(:payloads) AS p(payload)"
).bindparams(bindparam("payloads", type_=_TEXTS))

_LIVE_SESSIONS = text(
    "SELECT station_id, id FROM charging_sessions "
    "WHERE station_id = ANY(:ids) AND NOT (state = ANY(:final))"
).bindparams(bindparam("ids", type_=_TEXTS), bindparam("final", type_=_TEXTS))

_OPEN_TRANSACTIONS = text(
    "SELECT DISTINCT station_id, connector_id FROM ocpp_transactions "
    "WHERE station_id = ANY(:ids) AND stopped_at IS NULL"
).bindparams(bindparam("ids", type_=_TEXTS))


@dataclass(frozen=True, slots=True)
class Connected:
    station_id: str
    at: datetime
    remote_address: str | None


@dataclass(frozen=True, slots=True)
class Booted:
    station_id: str
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StatusReported:
    station_id: str
    connector_id: int  # 0 is the whole station: published, not stored
    status: str
    error_code: str
    at: datetime
    # Ask whether the database has a transaction open on this connector (an idle status is
    # then worth a closer look, gateway/idle_report.py).
    check_open: bool = False


Record = Connected | Booted | StatusReported


@dataclass
class _Answers:
    live_sessions: dict[str, list[str]]
    open_connectors: set[tuple[str, int]]


class Bookkeeping:
    """The gateway's per-charger records, batched. `queue` is this gateway's command queue,
    written as the holder of each connected station."""

    def __init__(self, engine: AsyncEngine, queue: str, *, max_batch: int = 500) -> None:
        self._engine = engine
        self._queue = queue
        self._max_batch = max_batch
        self._waiting: list[tuple[Record, asyncio.Future[_Answers]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def connect(self, station_id: str, at: datetime, remote_address: str | None) -> list[str]:
        """Name this gateway as the station's holder and publish it online; returns the ids
        of the station's sessions that are not final (read in the same batch)."""
        answers = await self._submit(Connected(station_id, at, remote_address))
        return answers.live_sessions.get(station_id, [])

    async def boot(self, record: Booted) -> None:
        await self._submit(record)

    async def status(self, record: StatusReported) -> bool:
        """Store and publish a connector status; with `check_open`, whether the database has
        a transaction open on that connector (read in the same batch, after the write)."""
        answers = await self._submit(record)
        return (record.station_id, record.connector_id) in answers.open_connectors

    async def _submit(self, record: Record) -> _Answers:
        answer: asyncio.Future[_Answers] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, answer))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name="gateway-bookkeeping")
        return await answer

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            records = [record for record, _ in batch]
            try:
                # No pre-ping on the engine that runs this: a pooled connection that died
                # with a restarted database is replaced here, at the cost of one retry.
                answers = await once_more_if_stale(partial(self._write, records))
            except Exception as exc:  # every waiting caller fails with it
                await wake.fail((answer for _, answer in batch), exc)
                continue
            await wake.answer((answer, answers) for _, answer in batch)

    async def _write(self, records: Sequence[Record]) -> _Answers:
        connects = [r for r in records if isinstance(r, Connected)]
        statuses = [r for r in records if isinstance(r, StatusReported)]
        async with self._engine.begin() as connection:
            if connects:
                await self._write_connections(connection, connects)
            await self._write_stations(connection, records)
            await self._write_connectors(connection, statuses)
            payloads = [status_notice("station_online", r.station_id, r.at) for r in connects] + [
                status_notice(
                    "connector_status",
                    r.station_id,
                    r.at,
                    connector_id=r.connector_id,
                    status=r.status,
                    error_code=r.error_code,
                )
                for r in statuses
            ]
            if payloads:
                await connection.execute(_NOTIFY, {"channel": STATION_STATUS, "payloads": payloads})
            return _Answers(
                live_sessions=await _live_sessions(connection, connects),
                open_connectors=await _open_connectors(connection, statuses),
            )

    async def _write_connections(
        self, connection: AsyncConnection, connects: Sequence[Connected]
    ) -> None:
        newest: dict[str, Connected] = {}
        for record in connects:  # in arrival order: the later connection wins
            newest[record.station_id] = record
        rows = list(newest.values())
        await connection.execute(
            _CONNECTIONS,
            {
                "queue": self._queue,
                "ids": [r.station_id for r in rows],
                "ats": [r.at for r in rows],
                "remotes": [r.remote_address for r in rows],
            },
        )

    @staticmethod
    async def _write_stations(connection: AsyncConnection, records: Sequence[Record]) -> None:
        seen: dict[str, datetime] = {}
        boots: dict[str, Booted] = {}
        for record in records:
            if isinstance(record, StatusReported):
                continue
            seen[record.station_id] = max(record.at, seen.get(record.station_id, record.at))
            if isinstance(record, Booted):
                boots[record.station_id] = record
        if not seen:
            return
        ids = sorted(seen)  # one lock order for every batch
        booted = [boots.get(i) for i in ids]
        await connection.execute(
            _STATIONS,
            {
                "ids": ids,
                "seen": [seen[i] for i in ids],
                "booted": [b is not None for b in booted],
                "vendors": [b.vendor if b else None for b in booted],
                "models": [b.model if b else None for b in booted],
                "serials": [b.serial_number if b else None for b in booted],
                "firmwares": [b.firmware_version if b else None for b in booted],
            },
        )

    @staticmethod
    async def _write_connectors(
        connection: AsyncConnection, statuses: Sequence[StatusReported]
    ) -> None:
        newest: dict[tuple[str, int], StatusReported] = {}
        for record in statuses:  # connector 0 is the whole station: published only
            if record.connector_id >= 1:
                newest[(record.station_id, record.connector_id)] = record
        if not newest:
            return
        rows = list(newest.values())
        await connection.execute(
            _CONNECTORS,
            {
                "ids": [r.station_id for r in rows],
                "connectors": [r.connector_id for r in rows],
                "statuses": [r.status for r in rows],
                "errors": [r.error_code for r in rows],
                "ats": [r.at for r in rows],
            },
        )


async def _live_sessions(
    connection: AsyncConnection, connects: Sequence[Connected]
) -> dict[str, list[str]]:
    if not connects:
        return {}
    ids = sorted({r.station_id for r in connects})
    rows = await connection.execute(_LIVE_SESSIONS, {"ids": ids, "final": list(FINAL_STATE_VALUES)})
    found: dict[str, list[str]] = {}
    for station_id, session_id in rows:
        found.setdefault(station_id, []).append(session_id)
    return found


async def _open_connectors(
    connection: AsyncConnection, statuses: Sequence[StatusReported]
) -> set[tuple[str, int]]:
    ids = sorted({r.station_id for r in statuses if r.check_open})
    if not ids:
        return set()
    rows = await connection.execute(_OPEN_TRANSACTIONS, {"ids": ids})
    return {(station_id, connector_id) for station_id, connector_id in rows}
