"""Connector status changes for the locations stream: one PostgreSQL LISTEN per process,
fanned out to every websocket subscriber of that process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

CHANNEL = "station_status"
SUBSCRIBER_QUEUE_SIZE = 256
READY_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 10.0
# Sent instead of the updates a slow subscriber could not keep up with: it should re-read
# the full picture rather than silently miss a status.
RESYNC: dict[str, Any] = {"type": "resync"}


class Subscription:
    """One subscriber's bounded queue of messages."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)

    def offer(self, message: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)

    async def next(self) -> dict[str, Any]:
        return await self._queue.get()


class StatusFeed:
    """LISTENs while anyone is subscribed; reconnects with backoff if the connection drops."""

    def __init__(self, engine: AsyncEngine, channel: str = CHANNEL) -> None:
        self._engine = engine
        self._channel = channel
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Yields once LISTEN is active, so nothing sent after this point is missed."""
        subscription = Subscription()
        async with self._lock:
            self._subscribers.add(subscription)
            if self._task is None:
                self._ready.clear()
                self._task = asyncio.create_task(self._listen(), name="status-feed")
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self._ready.wait()
            yield subscription
        finally:
            async with self._lock:
                self._subscribers.discard(subscription)
                if not self._subscribers and self._task is not None:
                    task, self._task = self._task, None
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def _listen(self) -> None:
        backoff = 0.5
        reconnecting = False
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await self._connect()
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(self._channel, self._on_notify)
                self._ready.set()
                if reconnecting:
                    # Whatever was notified while we were away is lost to us.
                    self._broadcast(RESYNC)
                backoff = 0.5
                await lost.wait()
                log.warning("status feed connection lost; reconnecting", channel=self._channel)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("status feed cannot listen", channel=self._channel, error=str(exc))
            finally:
                self._ready.clear()
                if connection is not None and not connection.is_closed():
                    # The connection is ours alone; closing it ends the LISTEN with it.
                    await connection.close(timeout=2)
            reconnecting = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _connect(self) -> asyncpg.Connection:
        # A dedicated connection, not one from the pool: a LISTEN must not leak into a
        # pooled connection that other requests reuse.
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        return connection

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
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


def _setter(event: asyncio.Event) -> Any:
    def on_terminated(_conn: object) -> None:
        event.set()

    return on_terminated
