"""The shared resources every role uses: settings, database engine and Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from db.engine import create_engine, session_factory
from runtime.readiness import wait_for_database, wait_for_temporal
from runtime.settings import Settings
from runtime.temporal_metrics import process_runtime


@dataclass(frozen=True)
class Services:
    """Built once per process by the composition root and handed to each part."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    db_sessions: async_sessionmaker[AsyncSession]
    temporal: Client


@asynccontextmanager
async def open_services(
    settings: Settings, *, database_url: str, temporal_address: str
) -> AsyncIterator[Services]:
    """Connect to the database and Temporal, waiting with backoff while either is not up
    yet (a deploy starts everything at once); dispose of both on exit."""
    engine = create_engine(database_url)
    try:
        await wait_for_database(engine, database_url, settings)
        # The SDK's metrics go to this process's /metrics through the runtime's buffer.
        temporal = await wait_for_temporal(settings, temporal_address, runtime=process_runtime())
        yield Services(
            settings=settings,
            database_url=database_url,
            engine=engine,
            db_sessions=session_factory(engine),
            temporal=temporal,
        )
    finally:
        await engine.dispose()
