"""The `clients` row: created on a client's first use, by whichever path meets the id first."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client


async def ensure_client(session: AsyncSession, client_id: str, email: str | None = None) -> None:
    """Insert the client row unless it exists (an existing row is left as it is)."""
    await session.execute(
        insert(Client)
        .values(id=client_id, email=email)
        .on_conflict_do_nothing(index_elements=[Client.id])
    )
