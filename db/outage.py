"""Telling an unreachable database apart from a data error: the first is worth a retry later
(503 with Retry-After), the second never is."""

from __future__ import annotations

from typing import Any

import asyncpg.exceptions
import sqlalchemy.exc
import structlog

# asyncpg errors that mean the server is gone, starting up or shutting down; SQLAlchemy
# wraps them inside a statement, but not always when a new connection is being made.
_ASYNCPG_GONE = (
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached, or dropped the connection (not a data error)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
        ):
            return True
        return isinstance(exc.orig, _ASYNCPG_GONE)
    return isinstance(exc, (OSError, TimeoutError, sqlalchemy.exc.TimeoutError, *_ASYNCPG_GONE))


def log_failure(
    log: structlog.stdlib.BoundLogger, event: str, exc: BaseException, **fields: Any
) -> None:
    """An outage is expected and said in one warning line; anything else is a bug and gets
    its traceback. (A traceback per failed step during an outage buries the log and costs
    the event loop time it needs to keep chargers answered.)"""
    if database_unavailable(exc):
        log.warning(event, error=repr(exc), cause="database unavailable", **fields)
    else:
        log.error(event, exc_info=exc, **fields)
