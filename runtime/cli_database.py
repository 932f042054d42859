"""The database a one-shot CLI command works on: DATABASE_URL, or the embedded server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import create_engine, session_factory
from db.migrate import upgrade
from runtime.infrastructure import database_url_for
from runtime.settings import Settings


@asynccontextmanager
async def cli_database(settings: Settings) -> AsyncIterator[str]:
    """Yield a database URL for the duration of one command.

    With DATABASE_URL that URL, as is. Otherwise the embedded PostgreSQL in the data dir:
    the one `evpower dev` runs when it is up (left running), else one started just for
    this command, migrated first (a fresh data dir has no schema) and stopped afterwards.
    """
    url, owned = await asyncio.to_thread(database_url_for, settings)
    try:
        if owned is not None:
            await upgrade(url)
        yield url
    finally:
        if owned is not None:
            await asyncio.to_thread(owned.stop)


@asynccontextmanager
async def cli_sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on `cli_database`'s database over one connection, closed when the command ends."""
    async with cli_database(settings) as url:
        engine = create_engine(url, pool_size=1)
        try:
            yield session_factory(engine)
        finally:
            await engine.dispose()
