"""One PostgreSQL LISTEN per process and channel, held while anyone is subscribed: a dedicated
connection that reconnects with backoff, whatever goes wrong, so a feed never dies while it has
subscribers. Feeds (api/status_feed.py, api/session_feed.py) say what a payload means."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import ApiContext

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 10.0


class ListeningFeed:
    """Base of the feeds: `_listening()` holds the LISTEN for one subscriber's lifetime and
    yields once it is active; subclasses handle each payload (`_on_payload`) and hear when
    notifications may have been lost while the connection was down (`_on_gap`)."""

    def __init__(self, engine: AsyncEngine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    def _on_payload(self, payload: str) -> None:
        raise NotImplementedError

    def _on_gap(self) -> None:
        """Whatever was notified while we were away is lost to us."""

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[None]:
        """Raises TimeoutError when the LISTEN is not active within READY_TIMEOUT_S."""
        async with self._lock:
            self._listeners += 1
            if self._task is None or self._task.done():
                self._ready.clear()
                self._task = asyncio.create_task(self._listen(), name=f"listen-{self._channel}")
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await self._ready.wait()
            yield
        finally:
            async with self._lock:
                self._listeners -= 1
                if not self._listeners and self._task is not None:
                    task, self._task = self._task, None
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

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
                    self._on_gap()
                listened = True
                backoff = 0.5
                await lost.wait()
                log.warning("feed connection lost; reconnecting", channel=self._channel)
            except Exception as exc:
                # Not only OSError/PostgresError: asyncpg raises InterfaceError (and others)
                # on a connection in a bad state; any of them ending this task would leave
                # subscribers waiting forever on a feed that no longer listens.
                log.warning(
                    "feed cannot listen",
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
        self._on_payload(payload)


def _setter(event: asyncio.Event) -> Any:
    def on_terminated(_conn: object) -> None:
        event.set()

    return on_terminated


Feed = TypeVar("Feed", bound=ListeningFeed)


def app_feed(app: Any, name: str, build: Callable[[AsyncEngine, ApiContext], Feed]) -> Feed:
    """The process's one feed `name` for this app, built on first use on the API's engine."""
    feed: Feed | None = getattr(app.state, name, None)
    if feed is None:
        context: ApiContext = app.state.context
        engine = context.db_sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise RuntimeError("the API's session factory is not bound to an engine")
        feed = build(engine, context)
        setattr(app.state, name, feed)
    return feed
