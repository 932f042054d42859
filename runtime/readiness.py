"""Start-up against real servers: wait for PostgreSQL and Temporal with backoff, and refuse
to run on a database schema that is behind the code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import Runtime

from db.migrate import heads
from runtime.settings import Settings
from runtime.temporal_client import connect_temporal

log = structlog.get_logger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


class StartupError(Exception):
    """The process cannot start; the message is one line telling the operator what to do."""


async def with_backoff(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    wait_s: float,
    where: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`attempt()` until it succeeds, doubling the pause up to MAX_DELAY_S; after `wait_s`
    seconds (0: never) give up with a StartupError naming the dependency."""
    deadline = time.monotonic() + wait_s if wait_s > 0 else None
    delay = FIRST_DELAY_S
    tries = 0
    while True:
        tries += 1
        try:
            result = await attempt()
        except (OSError, RuntimeError, DBAPIError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if deadline is not None and time.monotonic() + delay > deadline:
                raise StartupError(
                    f"{what} at {where} not reachable after {wait_s:.0f} s ({error})"
                ) from None
            log.warning(
                f"waiting for {what}", address=where, attempt=tries, retry_in_s=delay, error=error
            )
            await sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if tries > 1:
            log.info(f"{what} reachable", address=where, attempts=tries)
        return result


def _database_where(url: str) -> str:
    # Host and database only: the URL may carry a password.
    from sqlalchemy.engine import make_url

    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    host = parsed.host or parsed.query.get("host") or "local socket"
    return f"{host}/{parsed.database or ''}"


async def wait_for_database(engine: AsyncEngine, database_url: str, settings: Settings) -> None:
    async def ping() -> None:
        async with asyncio.timeout(10), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    await with_backoff(
        "PostgreSQL", ping, wait_s=settings.dependency_wait_s, where=_database_where(database_url)
    )


async def wait_for_temporal(
    settings: Settings, address: str, *, runtime: Runtime | None = None
) -> Client:
    async def connect() -> Client:
        client = await connect_temporal(settings, address, runtime=runtime)
        await client.service_client.check_health()
        return client

    return await with_backoff("Temporal", connect, wait_s=settings.dependency_wait_s, where=address)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision; None for a database never migrated."""
    try:
        async with engine.connect() as connection:
            row = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return row.scalar_one_or_none()
    except ProgrammingError:  # no alembic_version table
        return None


async def check_schema(engine: AsyncEngine) -> None:
    """Stop with one line when the database is not at the code's migration head."""
    current = await schema_revision(engine)
    wanted = heads()
    if current in wanted:
        return
    if current is None:
        raise StartupError("the database has no EvPower schema: run `evpower migrate` first")
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/"))
    if script.get_revision(current) is None:
        raise StartupError(
            f"the database schema ({current}) is newer than this EvPower: deploy the newer "
            "image everywhere (a rollback must not run against a migrated database)"
        )
    raise StartupError(
        f"the database schema ({current}) is behind the code ({', '.join(wanted)}): "
        "run `evpower migrate`"
    )
