"""The transaction a client's request runs in: row-level security limits it to that client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Created by migration 0005; it has no BYPASSRLS, so the policies on client-owned tables apply.
CLIENT_ROLE = "evpower_client"

# One round trip; both settings are transaction-local (`true`), so they end with the
# transaction and never leak into the next user of the pooled connection.
_ENTER = text(
    "SELECT set_config('role', :role, true), set_config('app.client_id', :client_id, true)"
)


@asynccontextmanager
async def client_scope(
    db_sessions: async_sessionmaker[AsyncSession], client_id: str
) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction (committed on success, rolled back on error) in which
    client-owned tables show and accept only `client_id`'s rows, whatever the WHERE says."""
    async with db_sessions() as session, session.begin():
        await session.execute(_ENTER, {"role": CLIENT_ROLE, "client_id": client_id})
        yield session
