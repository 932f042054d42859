"""Background sweep: batched last-seen writes, silent chargers dropped, stale rows cleared,
and the daily clock-sync Heartbeat asked of chargers that only keep the socket alive.

Liveness follows OCPP-J: any OCPP message or a WebSocket ping/pong is life (the transport
hands its ping/pong times over in the scope extension WIRE_LIVENESS); a charger silent on
both for twice the heartbeat interval is closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog

from db.outage import log_failure
from gateway.config import GatewayConfig
from gateway.registry import ConnectionRegistry
from gateway.store import GatewayStore

log = structlog.get_logger("gateway.liveness")

# ASGI scope extension under which the websocket transport hands over an object with
# `heard_at` (time.time() of the peer's last ping or pong), see runtime/websocket.py.
WIRE_LIVENESS = "evpower.websocket.liveness"


class Liveness:
    """Heartbeats cost no database round trip: their times are written here, in one batch."""

    def __init__(
        self,
        registry: ConnectionRegistry,
        store: GatewayStore,
        config: GatewayConfig,
        queue: str,
        upkeep: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._upkeep = upkeep  # more background work of the gateway, run on every sweep
        self._registry = registry
        self._store = store
        self._config = config
        self._queue = queue
        self._flushed_at = 0.0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._config.sweep_interval_s)
            await self.sweep()

    async def sweep(self) -> None:
        """One pass; each step logs its own failure so the next pass still runs."""
        steps: list[Callable[[], Awaitable[None]]] = [
            self.flush_last_seen,
            self._drop_silent,
            self._clear_stale,
            self._sync_clocks,
        ]
        if self._upkeep is not None:
            steps.append(self._upkeep)
        for step in steps:
            try:
                await step()
            except Exception as exc:
                log_failure(
                    log, "liveness step failed", exc, step=getattr(step, "__name__", "upkeep")
                )

    async def flush_last_seen(self) -> None:
        since, self._flushed_at = self._flushed_at, time.time()
        heard = ((connection, connection.heard_at()) for connection in self._registry)
        seen = {
            connection.station_id: datetime.fromtimestamp(at, UTC)
            for connection, at in heard
            if at > since and connection.registration != "pending"
        }
        await self._store.touch(seen)

    async def _drop_silent(self) -> None:
        deadline = time.time() - self._config.offline_after_s
        silent = [c for c in self._registry if c.heard_at() < deadline and not c.closed]
        for connection in silent:
            log.warning(
                "charger silent, closing",
                station_id=connection.station_id,
                silent_s=round(time.time() - connection.heard_at()),
            )
        await asyncio.gather(
            *(c.close(1001, "no traffic for twice the heartbeat interval") for c in silent)
        )

    async def _clear_stale(self) -> None:
        # Another gateway's rows are only trusted while their stations' traffic keeps
        # last_seen_at fresh; one flush period of slack covers that gateway's batching.
        slack = self._config.offline_after_s + self._config.last_seen_flush_s
        now = datetime.now(UTC)
        silent_since = now - timedelta(seconds=slack)
        for station_id in await self._store.sweep_stale(silent_since, self._queue, now):
            log.info("stale connection cleared", station_id=station_id)

    async def _sync_clocks(self) -> None:
        """Ask for a Heartbeat (TriggerMessage) where none came for a clock-sync interval:
        at most once per interval per connection, after the answer to the sweep."""
        due = time.time() - self._config.clock_sync_interval_s
        for connection in self._registry:
            if connection.registration == "accepted" and connection.clock_sync_due(due):
                connection.ask_for_heartbeat()
