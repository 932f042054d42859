"""`ClientDb`: the database session of an authenticated request, under row-level security."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import CurrentClient
from api.client_scope import client_scope
from api.deps import Context


async def client_db(client: CurrentClient, context: Context) -> AsyncIterator[AsyncSession]:
    async with client_scope(context.db_sessions, client.client_id) as session:
        yield session


ClientDb = Annotated[AsyncSession, Depends(client_db)]
