"""`WS /charging/{session_id}/stream`: a session as it changes, for its owner.

Woken by the session feed (a meter sample stored by any gateway, a session row written by the
worker: PostgreSQL NOTIFY, so every api process hears it), the stream re-reads the session from
the database (api/v1/session_progress.py) and sends a message for every meter sample stored
since the last one it sent (a burst of notifications is one read; none of its samples is lost).
A slow refresh is the safety net for a notification that never came."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.deps import ApiContext
from api.response_shapes import json_body
from api.session_feed import SessionWatch, session_feed
from api.v1.session_progress import session_progress
from api.ws_auth import (
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    Refusal,
    authenticate,
    chosen_subprotocol,
)
from domain.errors import NotFound
from domain.identifiers import is_session_id

log = structlog.get_logger(__name__)

router = APIRouter(tags=["charging"])

# Without any notification, the session is re-read this often (a database read, no Temporal).
REFRESH_S = 10.0
NORMAL_CLOSURE = 1000
# Streams one client may hold open on one api process: each re-reads the database on every
# sample, so a client opening hundreds would multiply that load.
MAX_STREAMS_PER_CLIENT = 5


@router.websocket("/charging/{session_id}/stream")
async def session_stream(websocket: WebSocket, session_id: str) -> None:
    """Messages are `SessionProgress` (`type` `session`, then one `final`, then close 1000).
    Refused with close 1008 and the error code as reason (`missing_token`, `invalid_token`,
    `token_expired`, ..., `session_not_found`, `too_many_streams`); 1013 when a dependency
    is unavailable."""
    await websocket.accept(subprotocol=chosen_subprotocol(websocket))
    try:
        client = await authenticate(websocket)
        if not is_session_id(session_id):
            raise Refusal(POLICY_VIOLATION, "session_not_found")
        with _counted(websocket.app, client.client_id):
            await _follow(websocket, client.client_id, session_id)
    except Refusal as refusal:
        await _close(websocket, refusal.code, refusal.reason)
    except WebSocketDisconnect:
        return
    except TimeoutError:
        log.warning("session stream: feed not ready", session_id=session_id)
        await _close(websocket, TRY_AGAIN_LATER, "temporarily_unavailable")
    except Exception as exc:
        # A database outage while reading: the client may reconnect later.
        log.warning(
            "session stream failed",
            session_id=session_id,
            error_type=type(exc).__name__,
            error=str(exc)[:200],
        )
        await _close(websocket, TRY_AGAIN_LATER, "temporarily_unavailable")


@contextlib.contextmanager
def _counted(app: Any, client_id: str) -> Iterator[None]:
    streams: Counter[str] | None = getattr(app.state, "session_streams", None)
    if streams is None:
        streams = app.state.session_streams = Counter()
    if streams[client_id] >= MAX_STREAMS_PER_CLIENT:
        raise Refusal(POLICY_VIOLATION, "too_many_streams")
    streams[client_id] += 1
    try:
        yield
    finally:
        streams[client_id] -= 1
        if streams[client_id] <= 0:
            del streams[client_id]


async def _follow(websocket: WebSocket, client_id: str, session_id: str) -> None:
    context: ApiContext = websocket.app.state.context
    # Watch before the first read, so a change between the two is not missed.
    async with session_feed(websocket.app).watch(session_id) as watch:
        client_gone = asyncio.create_task(_wait_for_disconnect(websocket))
        try:
            last: dict[str, Any] | None = None
            last_sample_id: int | None = None
            while True:
                try:
                    progress = await session_progress(
                        context, client_id, session_id, last_sample_id
                    )
                except NotFound:
                    raise Refusal(POLICY_VIOLATION, "session_not_found") from None
                last_sample_id = progress.last_sample_id
                for update in progress.messages:
                    message: dict[str, Any] = json_body(update)
                    if message != last:
                        await websocket.send_json(message)
                        last = message
                if progress.messages[-1].type == "final":
                    await _close(websocket, NORMAL_CLOSURE, "settled")
                    return
                if not await _next_change(watch, client_gone):
                    return
        finally:
            client_gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client_gone


async def _next_change(watch: SessionWatch, client_gone: asyncio.Task[None]) -> bool:
    """Wait for a notification or the refresh; False when the client went away."""
    changed = asyncio.create_task(watch.changed())
    try:
        done, _ = await asyncio.wait(
            {changed, client_gone}, timeout=REFRESH_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        changed.cancel()
    return client_gone not in done


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    """After authentication the client has nothing to say; this notices it leaving."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if WebSocketState.DISCONNECTED in (websocket.application_state, websocket.client_state):
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)
