"""Which sessions may have changed, for the live session streams: one PostgreSQL LISTEN per
process on the `charging_session` channel (api.pg_listener), each notification (a session id) waking
only the streams of that session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.pg_listener import ListeningFeed, app_feed
from domain.contracts.notify_channels import SESSION_PROGRESS


class SessionWatch:
    """A flag raised whenever the session may have changed. A burst of notifications while the
    stream is busy reading raises it once: one read then covers every sample stored since the
    stream's last one."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def poke(self) -> None:
        self._changed.set()

    async def changed(self) -> None:
        await self._changed.wait()
        self._changed.clear()


class SessionFeed(ListeningFeed):
    def __init__(self, engine: AsyncEngine, channel: str = SESSION_PROGRESS) -> None:
        super().__init__(engine, channel)
        self._watches: dict[str, set[SessionWatch]] = {}

    @contextlib.asynccontextmanager
    async def watch(self, session_id: str) -> AsyncIterator[SessionWatch]:
        """Yields once LISTEN is active: a change after this point is never missed."""
        watch = SessionWatch()
        self._watches.setdefault(session_id, set()).add(watch)
        try:
            async with self._listening():
                yield watch
        finally:
            watches = self._watches.get(session_id, set())
            watches.discard(watch)
            if not watches:
                self._watches.pop(session_id, None)

    @property
    def watch_count(self) -> int:
        return sum(len(watches) for watches in self._watches.values())

    def _on_payload(self, payload: str) -> None:
        for watch in tuple(self._watches.get(payload.strip(), ())):
            watch.poke()

    def _on_gap(self) -> None:
        # Notifications sent while the connection was down are lost: everyone re-reads.
        for watches in tuple(self._watches.values()):
            for watch in tuple(watches):
                watch.poke()


def session_feed(app: Any) -> SessionFeed:
    """The process's one session feed for this app, created on first use."""
    return app_feed(app, "session_feed", lambda engine, _context: SessionFeed(engine))
