"""Connector status changes for the locations stream: one PostgreSQL LISTEN per process,
fanned out to every websocket subscriber of that process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
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


class StatusFeed:
    """LISTENs while anyone is subscribed; reconnects with backoff if the connection drops or
    anything else goes wrong, so the feed never dies while it has subscribers."""

    def __init__(
        self, engine: AsyncEngine, channel: str = CHANNEL, snapshot: SnapshotLoader | None = None
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._snapshot = SharedSnapshot(snapshot) if snapshot is not None else None
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
            if self._task is None or self._task.done():
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

    async def snapshot(self, subscription: Subscription) -> Snapshot:
        """The full picture, fresh enough for this subscriber, shared with the others."""
        if self._snapshot is None:
            raise RuntimeError("this status feed was created without a snapshot loader")
        return await self._snapshot.get(subscription)

    async def _listen(self) -> None:
        backoff = 0.5
        # Only subscribers that were already listening can have missed something.
        listened = False
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await self._connect()
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(self._channel, self._on_notify)
                self._ready.set()
                if listened:
                    # Whatever was notified while we were away is lost to us.
                    self._broadcast(RESYNC)
                listened = True
                backoff = 0.5
                await lost.wait()
                log.warning("status feed connection lost; reconnecting", channel=self._channel)
            except Exception as exc:
                # Not only OSError/PostgresError: asyncpg raises InterfaceError (and others)
                # on a connection in a bad state; any of them ending this task would leave
                # subscribers waiting forever on a feed that no longer listens.
                log.warning(
                    "status feed cannot listen",
                    channel=self._channel,
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
            finally:
                self._ready.clear()
                if connection is not None and not connection.is_closed():
                    # The connection is ours alone; closing it ends the LISTEN with it.
                    try:
                        await connection.close(timeout=2)
                    except Exception:
                        connection.terminate()
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
