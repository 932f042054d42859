"""Connector status changes for the locations stream: one PostgreSQL LISTEN per process
(api.pg_listener), fanned out to every websocket subscriber of that process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from api.pg_listener import ListeningFeed
from domain.contracts.notify_channels import STATION_STATUS

log = structlog.get_logger(__name__)

SUBSCRIBER_QUEUE_SIZE = 256
# Sent instead of the updates a slow subscriber could not keep up with: it should re-read
# the full picture rather than silently miss a status.
RESYNC: dict[str, Any] = {"type": "resync"}


Snapshot = dict[str, Any]
SnapshotLoader = Callable[[], Awaitable[Snapshot]]


class Subscription:
    """One subscriber's bounded queue of messages. `needs_state_since` is the loop time after
    which a snapshot must have been taken to cover everything this subscriber missed."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        self.needs_state_since = asyncio.get_running_loop().time()

    def offer(self, message: dict[str, Any]) -> None:
        if message is RESYNC:
            self.needs_state_since = asyncio.get_running_loop().time()
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.needs_state_since = asyncio.get_running_loop().time()
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)

    async def next(self) -> dict[str, Any]:
        return await self._queue.get()


class SharedSnapshot:
    """One snapshot load shared by every subscriber that needs one: after a burst of status
    changes overflows all queues at once, the subscribers read one query's result instead
    of each running its own. A load serves a subscriber only if it started after that
    subscriber's `needs_state_since`, so nobody is handed a picture older than what it missed.
    """

    def __init__(self, load: SnapshotLoader) -> None:
        self._load = load
        self._latest: tuple[float, asyncio.Task[Snapshot]] | None = None

    async def get(self, subscription: Subscription) -> Snapshot:
        latest = self._latest
        if latest is None or latest[0] < subscription.needs_state_since or _failed(latest[1]):
            loop = asyncio.get_running_loop()
            latest = (loop.time(), asyncio.ensure_future(self._load()))
            self._latest = latest
        # Shielded: one subscriber leaving must not cancel the load the others wait for.
        return await asyncio.shield(latest[1])


def _failed(task: asyncio.Task[Snapshot]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


class StatusFeed(ListeningFeed):
    """LISTENs while anyone is subscribed (api.pg_listener); every status change goes to every
    subscriber of this process, and a `resync` after a reconnect."""

    def __init__(
        self,
        engine: AsyncEngine,
        channel: str = STATION_STATUS,
        snapshot: SnapshotLoader | None = None,
    ) -> None:
        super().__init__(engine, channel)
        self._snapshot = SharedSnapshot(snapshot) if snapshot is not None else None
        self._subscribers: set[Subscription] = set()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Yields once LISTEN is active, so nothing sent after this point is missed."""
        subscription = Subscription()
        self._subscribers.add(subscription)
        try:
            async with self._listening():
                yield subscription
        finally:
            self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def snapshot(self, subscription: Subscription) -> Snapshot:
        """The full picture, fresh enough for this subscriber, shared with the others."""
        if self._snapshot is None:
            raise RuntimeError("this status feed was created without a snapshot loader")
        return await self._snapshot.get(subscription)

    def _on_gap(self) -> None:
        self._broadcast(RESYNC)

    def _on_payload(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("status notification is not JSON", payload=payload[:200])
            return
        if not isinstance(event, dict) or "station_id" not in event:
            log.warning("status notification without station_id", payload=payload[:200])
            return
        self._broadcast({**event, "type": "status"})

    def _broadcast(self, message: dict[str, Any]) -> None:
        for subscription in tuple(self._subscribers):
            subscription.offer(message)
