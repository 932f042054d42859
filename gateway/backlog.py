"""Writes PostgreSQL could not take while it was down, kept in memory and retried until it
takes them. Only writes whose message already reached its workflow through Temporal go here:
the charger was answered because Temporal has the message; the row follows."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy.exc
import structlog

from db.outage import database_unavailable

log = structlog.get_logger("gateway.backlog")

Write = Callable[[], Awaitable[object]]
T = TypeVar("T")


async def once_more_if_stale(work: Callable[[], Awaitable[T]]) -> T:
    """A pooled connection that died with a restarted database fails its first statement,
    and SQLAlchemy then invalidates the pool: a second attempt gets a fresh connection. A
    charger must not spend one of its few attempts on our stale pool."""
    try:
        return await work()
    except sqlalchemy.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return await work()


class DatabaseBacklog:
    """First in, first out; bounded, so an outage cannot grow it without limit."""

    def __init__(self, *, max_writes: int, retry_first_s: float, retry_max_s: float) -> None:
        self._max_writes = max_writes
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self._writes: deque[tuple[str, Write]] = deque()
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._writes)

    def has_room(self, count: int = 1) -> bool:
        return len(self._writes) + count <= self._max_writes

    def add(self, what: str, write: Write) -> None:
        self._writes.append((what, write))
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            pause = self._retry_first_s
            while self._writes:
                if await self._write_head():
                    pause = self._retry_first_s
                    continue
                await asyncio.sleep(pause)
                pause = min(pause * 2, self._retry_max_s)

    async def flush(self) -> int:
        """One attempt at everything still held (shutdown); returns how many are left."""
        while self._writes and await self._write_head():
            pass
        if self._writes:
            log.error("writes lost at shutdown: the database stayed down", count=len(self._writes))
        return len(self._writes)

    async def _write_head(self) -> bool:
        what, write = self._writes[0]
        try:
            await write()
        except Exception as exc:
            if database_unavailable(exc):
                return False
            # A write that fails for another reason will not pass on a retry either.
            log.exception("held write refused by the database; dropped", what=what)
        else:
            log.info("held write stored", what=what, left=len(self._writes) - 1)
        self._writes.popleft()
        return True
