"""Who is on the other end of an API websocket. Browsers cannot set an Authorization header on a
websocket, so the bearer token may also come as a subprotocol (`bearer.<token>`, offered next to
`evpower.v1`, which is the one the server selects: a token is never echoed back) or as the first
message `{"token": "..."}`. A refusal is a close with code 1008 and the error code as reason."""

from __future__ import annotations

import asyncio
import json

from starlette.websockets import WebSocket, WebSocketDisconnect

from api.asgi_types import header
from api.auth import AuthenticatedClient, auth_state, bearer_token
from api.errors import ApiError

SUBPROTOCOL = "evpower.v1"
BEARER_PROTOCOL_PREFIX = "bearer."
FIRST_MESSAGE_TIMEOUT_S = 10.0
MAX_FIRST_MESSAGE = 16 * 1024
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


class Refusal(Exception):
    """Why a websocket is closed: a close code and a short machine-readable reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def offered_token(websocket: WebSocket) -> str | None:
    """A token from the handshake: the Authorization header, else a `bearer.` subprotocol."""
    token = bearer_token(header(websocket.scope, "authorization"))
    if token is not None:
        return token
    for protocol in websocket.scope.get("subprotocols", []):
        token = str(protocol).removeprefix(BEARER_PROTOCOL_PREFIX)
        if token != protocol and token:
            return token
    return None


def chosen_subprotocol(websocket: WebSocket) -> str | None:
    return SUBPROTOCOL if SUBPROTOCOL in websocket.scope.get("subprotocols", []) else None


async def _first_message_token(websocket: WebSocket) -> str:
    try:
        async with asyncio.timeout(FIRST_MESSAGE_TIMEOUT_S):
            text = await websocket.receive_text()
    except TimeoutError:
        raise Refusal(POLICY_VIOLATION, "missing_token") from None
    except (KeyError, RuntimeError):  # a binary frame where text was expected
        raise Refusal(POLICY_VIOLATION, "invalid_token") from None
    if len(text) > MAX_FIRST_MESSAGE:
        raise Refusal(POLICY_VIOLATION, "invalid_token")
    try:
        message = json.loads(text)
    except ValueError:
        raise Refusal(POLICY_VIOLATION, "invalid_token") from None
    token = message.get("token") if isinstance(message, dict) else None
    if not isinstance(token, str) or not token:
        raise Refusal(POLICY_VIOLATION, "missing_token")
    return token


async def authenticate(websocket: WebSocket) -> AuthenticatedClient:
    """Call after `accept()`. Raises Refusal (bad, expired or missing token; the identity
    provider unreachable) or WebSocketDisconnect (the client left)."""
    token = offered_token(websocket)
    if token is None:
        token = await _first_message_token(websocket)
    try:
        return await auth_state(websocket.app).authenticator.verify(token)
    except ApiError as exc:
        if exc.status == 401:
            raise Refusal(POLICY_VIOLATION, exc.code) from None
        raise Refusal(TRY_AGAIN_LATER, exc.code) from None


__all__ = [
    "POLICY_VIOLATION",
    "SUBPROTOCOL",
    "TRY_AGAIN_LATER",
    "Refusal",
    "WebSocketDisconnect",
    "authenticate",
    "chosen_subprotocol",
]
