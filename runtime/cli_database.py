"""The database a one-shot CLI command works on: DATABASE_URL, or the embedded server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
