"""The API's engine: stuck statements are cut off, and a connection the server dropped is
replaced at checkout (pre-ping), so no request fails on it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine


async def test_a_statement_over_the_timeout_is_cancelled_by_the_server(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, statement_timeout_ms=50)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="statement timeout"):
                await connection.execute(text("SELECT pg_sleep(5)"))
    finally:
        await engine.dispose()


async def test_a_dropped_connection_is_replaced_at_checkout_without_a_failure(
    database_url: str, engine: AsyncEngine
) -> None:
    pooled = create_engine(database_url, pool_size=1)
    try:
        async with pooled.connect() as connection:
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        # The idle pooled connection is killed behind the pool's back (a restart, a proxy).
        async with engine.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with pooled.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await pooled.dispose()
