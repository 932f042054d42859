"""Locations: the map of stations (`GET /locations`) and its live status stream (websocket)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.deps import ApiContext, DbSession
from api.pg_listener import app_feed
from api.status_feed import StatusFeed, Subscription
from api.v1.station_views import LocationView, load_locations

log = structlog.get_logger(__name__)

router = APIRouter(tags=["locations"])


class LocationList(BaseModel):
    locations: list[LocationView]


@router.get("/locations")
async def list_locations(session: DbSession) -> LocationList:
    """Locations with their stations, connectors and live statuses."""
    return LocationList(locations=await load_locations(session))


@router.websocket("/locations/stream")
async def locations_stream(websocket: WebSocket) -> None:
    """First a `snapshot` message (what `GET /locations` returns), then one `status` message
    per connector status change; `resync` means updates were missed and a new snapshot
    follows."""
    await websocket.accept()
    try:
        feed = status_feed(websocket.app)
        async with feed.subscribe() as subscription:
            await websocket.send_json(await feed.snapshot(subscription))
            await _pump(websocket, feed, subscription)
    except TimeoutError:
        log.warning("locations stream: status feed not ready")
        await websocket.close(code=1011, reason="status feed unavailable")


async def _pump(websocket: WebSocket, feed: StatusFeed, subscription: Subscription) -> None:
    """Forwards messages until the client goes away (we never expect it to send anything)."""
    client_gone = asyncio.create_task(_wait_for_disconnect(websocket))
    try:
        while True:
            next_message = asyncio.create_task(subscription.next())
            done, _ = await asyncio.wait(
                {client_gone, next_message}, return_when=asyncio.FIRST_COMPLETED
            )
            if client_gone in done:
                next_message.cancel()
                return
            message = next_message.result()
            await websocket.send_json(message)
            if message["type"] == "resync":
                await websocket.send_json(await feed.snapshot(subscription))
    finally:
        client_gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client_gone


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _load_snapshot(db_sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with db_sessions() as session:
        locations = await load_locations(session)
    return {
        "type": "snapshot",
        "locations": [location.model_dump(mode="json") for location in locations],
    }


def status_feed(app: Any) -> StatusFeed:
    """The process's one feed for this app, created on first use."""

    def build(engine: AsyncEngine, context: ApiContext) -> StatusFeed:
        return StatusFeed(engine, snapshot=lambda: _load_snapshot(context.db_sessions))

    return app_feed(app, "status_feed", build)
