"""The status feed on the real database: it survives errors that are not network errors, and a
burst that overflows every subscriber costs one snapshot query, not one per subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.status_feed import RESYNC, SUBSCRIBER_QUEUE_SIZE, StatusFeed, Subscription


class FlakyFeed(StatusFeed):
    """The first connection attempts fail the way a connection in a bad state does."""

    def __init__(self, engine: AsyncEngine, failures: int, **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        self.failures = failures

    async def _connect(self) -> asyncpg.Connection:
        if self.failures > 0:
            self.failures -= 1
            raise asyncpg.InterfaceError("cannot perform operation: connection is closed")
        return await super()._connect()


async def _notify(engine: AsyncEngine, channel: str, count: int) -> None:
    async with engine.begin() as connection:
        for n in range(count):
            payload = json.dumps({"station_id": "EVP-001", "connector_id": 1, "n": n})
            await connection.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": channel, "payload": payload},
            )


async def _overflowed(subscriptions: list[Subscription], since: list[float]) -> None:
    """Wait until the listener has overflowed every queue: the notifications reach it on its
    own connection, possibly after `_notify`'s commit returned, and a subscriber that drained
    meanwhile would never overflow and wait for a resync for ever."""
    for _ in range(6_000):
        if all(s.needs_state_since != t for s, t in zip(subscriptions, since, strict=True)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the listener never overflowed every queue")


async def _drain_until_resync(subscription: Subscription) -> None:
    while (await subscription.next()) != RESYNC:
        pass


async def test_an_interface_error_does_not_kill_the_feed(engine: AsyncEngine) -> None:
    feed = FlakyFeed(engine, failures=1, channel="status_feed_test_flaky")
    async with feed.subscribe() as subscription:
        await _notify(engine, "status_feed_test_flaky", 1)
        message = await subscription.next()
    assert message["type"] == "status"
    assert feed.failures == 0


async def test_a_dead_listener_task_is_restarted_by_the_next_subscriber(
    engine: AsyncEngine,
) -> None:
    feed = StatusFeed(engine, channel="status_feed_test_restart")
    async with feed.subscribe():
        task = feed._task
        assert task is not None
        # Whatever ended it, a task that is gone must not be mistaken for a live one.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with feed.subscribe() as second:
            await _notify(engine, "status_feed_test_restart", 1)
            message = await second.next()
    assert message["station_id"] == "EVP-001"


async def test_a_burst_overflowing_every_subscriber_costs_one_snapshot(
    engine: AsyncEngine,
) -> None:
    loads = 0

    async def load() -> dict[str, Any]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)
        return {"type": "snapshot", "load": loads}

    feed = StatusFeed(engine, channel="status_feed_test_burst", snapshot=load)
    async with contextlib.AsyncExitStack() as stack:
        subscribers = [await stack.enter_async_context(feed.subscribe()) for _ in range(20)]
        since = [s.needs_state_since for s in subscribers]
        await _notify(engine, "status_feed_test_burst", SUBSCRIBER_QUEUE_SIZE + 10)
        await _overflowed(subscribers, since)
        await asyncio.gather(*(_drain_until_resync(s) for s in subscribers))
        snapshots = await asyncio.gather(*(feed.snapshot(s) for s in subscribers))
        assert loads == 1
        assert all(snapshot == {"type": "snapshot", "load": 1} for snapshot in snapshots)
        # A later overflow needs a newer picture than the shared one.
        since = [subscribers[0].needs_state_since]
        await _notify(engine, "status_feed_test_burst", SUBSCRIBER_QUEUE_SIZE + 10)
        await _overflowed(subscribers[:1], since)
        await _drain_until_resync(subscribers[0])
        assert await feed.snapshot(subscribers[0]) == {"type": "snapshot", "load": 2}
