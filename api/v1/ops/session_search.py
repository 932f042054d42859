"""The session search's query: every client's sessions, newest first, filtered by station,
client, state and creation time, a page at a time by keyset (created_at, id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChargingSessionRecord
from domain.sessions import SessionState


@dataclass(frozen=True)
class SessionFilter:
    station_id: str | None = None
    client_id: str | None = None
    state: SessionState | None = None
    created_from: datetime | None = None  # included
    created_to: datetime | None = None  # excluded
    after: tuple[datetime, str] | None = None  # the last (created_at, id) of the page before


def _query(where: SessionFilter, limit: int) -> Select[ChargingSessionRecord]:
    query = select(ChargingSessionRecord)
    if where.station_id is not None:
        query = query.where(ChargingSessionRecord.station_id == where.station_id)
    if where.client_id is not None:
        query = query.where(ChargingSessionRecord.client_id == where.client_id)
    if where.state is not None:
        query = query.where(ChargingSessionRecord.state == where.state.value)
    if where.created_from is not None:
        query = query.where(ChargingSessionRecord.created_at >= where.created_from)
    if where.created_to is not None:
        query = query.where(ChargingSessionRecord.created_at < where.created_to)
    if where.after is not None:
        query = query.where(
            tuple_(ChargingSessionRecord.created_at, ChargingSessionRecord.id)
            < tuple_(*where.after)
        )
    return query.order_by(
        ChargingSessionRecord.created_at.desc(), ChargingSessionRecord.id.desc()
    ).limit(limit)


async def find_sessions(
    db: AsyncSession, where: SessionFilter, limit: int
) -> tuple[list[ChargingSessionRecord], bool]:
    """A page of sessions and whether more follow."""
    rows = list(await db.scalars(_query(where, limit + 1)))
    return rows[:limit], len(rows) > limit
