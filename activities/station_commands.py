"""`station_command_target`: where an operator's command to a charger can go right now, and
whether a live session stands in its way (the StationCommand workflow asks before sending)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import ChargingSessionRecord, Station, StationConnection
from domain.sessions import LIVE_STATES

STATION_COMMAND_TARGET = "station_command_target"


@dataclass(frozen=True)
class CommandTargetQuery:
    station_id: str
    # Look for live sessions on this connector (0: on any); None: the command disturbs none.
    sessions_on_connector: int | None = None


@dataclass(frozen=True)
class CommandTarget:
    station_id: str
    known: bool
    gateway_queue: str | None  # None: no gateway holds the charger's websocket now
    live_sessions: list[str] = field(default_factory=list)


class StationCommandActivities:
    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    def activities(self) -> list[Callable[..., Any]]:
        return [self.station_command_target]

    @activity.defn(name=STATION_COMMAND_TARGET)
    async def station_command_target(self, query: CommandTargetQuery) -> CommandTarget:
        async with self._db_sessions() as session:
            if await session.get(Station, query.station_id) is None:
                return CommandTarget(query.station_id, known=False, gateway_queue=None)
            connection = await session.get(StationConnection, query.station_id)
            live: list[str] = []
            if query.sessions_on_connector is not None:
                live = await _live_sessions(session, query.station_id, query.sessions_on_connector)
            return CommandTarget(
                query.station_id,
                known=True,
                gateway_queue=connection.gateway_queue if connection is not None else None,
                live_sessions=live,
            )


async def _live_sessions(session: AsyncSession, station_id: str, connector_id: int) -> list[str]:
    query = select(ChargingSessionRecord.id).where(
        ChargingSessionRecord.station_id == station_id,
        ChargingSessionRecord.state.in_(sorted(LIVE_STATES)),
    )
    if connector_id != 0:
        query = query.where(ChargingSessionRecord.connector_id == connector_id)
    return list(await session.scalars(query.order_by(ChargingSessionRecord.id)))
