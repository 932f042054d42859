"""The session feed on the real database: a notification wakes only that session's watchers,
and after a lost connection every watcher re-reads (what was notified meanwhile is gone)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.session_feed import SessionFeed, SessionWatch

CHANNEL = "session_feed_test"


async def _notify(engine: AsyncEngine, *session_ids: str) -> None:
    async with engine.begin() as connection:
        for session_id in session_ids:
            await connection.execute(
                text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": session_id}
            )


async def _woken(watch: SessionWatch) -> bool:
    try:
        async with asyncio.timeout(0.5):
            await watch.changed()
    except TimeoutError:
        return False
    return True


async def test_a_notification_wakes_only_its_sessions_watchers(engine: AsyncEngine) -> None:
    feed = SessionFeed(engine, channel=CHANNEL)
    async with (
        feed.watch("aaaaaaaaaaaaaaaa") as first,
        feed.watch("aaaaaaaaaaaaaaaa") as second,
        feed.watch("bbbbbbbbbbbbbbbb") as other,
    ):
        # A burst for one session wakes each of its watchers once.
        await _notify(engine, "aaaaaaaaaaaaaaaa")
        await _notify(engine, "aaaaaaaaaaaaaaaa")
        assert await _woken(first) and await _woken(second)
        assert not await _woken(other)
        assert feed.watch_count == 3
    assert feed.watch_count == 0


async def test_a_lost_connection_makes_every_watcher_re_read(engine: AsyncEngine) -> None:
    feed = SessionFeed(engine, channel=CHANNEL)
    async with feed.watch("cccccccccccccccc") as watch:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE :listen AND pid <> pg_backend_pid()"
                ),
                {"listen": f"LISTEN%{CHANNEL}%"},
            )
        async with asyncio.timeout(30):  # a safety net: the feed reconnects after 0.5 s
            await watch.changed()
        await _notify(engine, "cccccccccccccccc")  # and it listens again
        async with asyncio.timeout(30):
            await watch.changed()
