"""Reads of `charging_sessions` that more than one reader shares."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChargingSessionRecord


async def own_session_row(
    session: AsyncSession, client_id: str, session_id: str
) -> ChargingSessionRecord | None:
    """The client's own session row; None for an unknown one and for someone else's alike (the
    client filter stands even where row-level security does not)."""
    row: ChargingSessionRecord | None = await session.scalar(
        select(ChargingSessionRecord).where(
            ChargingSessionRecord.id == session_id,
            ChargingSessionRecord.client_id == client_id,
        )
    )
    return row
