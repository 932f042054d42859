"""Telling an unreachable database apart from a data error: the first is worth a retry later
(503 with Retry-After), the second never is."""

from __future__ import annotations

import asyncpg.exceptions
import sqlalchemy.exc

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
