"""Async engine and session factory for PostgreSQL through asyncpg."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# A query that has not answered in this long is stuck (a lock wait, a runaway plan); failing
# it frees the pooled connection instead of parking a request on it forever.
COMMAND_TIMEOUT_S = 30.0
STATEMENT_TIMEOUT_MS = 30_000
# Connections older than this are replaced at checkout, so a proxy or firewall that drops
# idle connections after a while never hands us a dead one.
POOL_RECYCLE_S = 1_800
# A server that does not answer a new connection within this is treated as down (asyncpg's
# own default waits a minute, holding the request that long).
CONNECT_TIMEOUT_S = 10.0


def asyncpg_url(database_url: str) -> str:
    """Any postgres URL (also the embedded server's unix-socket form) in asyncpg dialect form."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pre_ping: bool = True,
    echo: bool = False,
    command_timeout_s: float | None = COMMAND_TIMEOUT_S,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
) -> AsyncEngine:
    """Every checkout is pre-pinged unless `pre_ping` is False: after a PostgreSQL restart
    the pool's connections are all dead, and without the ping each one failed its first
    statement (a request answered 500 `connection is closed`) before the pool noticed. The
    ping is one tiny round trip on a connection that is reused for the whole transaction.
    An engine whose every statement is retried once on a stale connection may go without
    (the gateway's admission pool, gateway/backlog.py: `once_more_if_stale`).
    `max_overflow` defaults to `pool_size` (up to twice as many connections under load)."""
    return create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_recycle=POOL_RECYCLE_S,
        pool_pre_ping=pre_ping,
        echo=echo,
        connect_args={
            # The client-side timeout backs up the server's: it also covers a server that
            # stopped answering altogether.
            "command_timeout": command_timeout_s,
            "timeout": CONNECT_TIMEOUT_S,
            "server_settings": {"statement_timeout": str(statement_timeout_ms)},
        },
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
