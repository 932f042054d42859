"""One ASGI app on one port: OCPP websockets to the gateway, everything else to FastAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gateway.upgrade import OCPP_PATH_PREFIXES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class OcppDispatcher:
    """Routes websocket scopes under /ws/ and /ocpp/ to the gateway, the rest to the API."""

    def __init__(self, api: ASGIApp, gateway: ASGIApp | None) -> None:
        self._api = api
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._gateway is not None
            and scope["type"] == "websocket"
            and str(scope.get("path", "")).startswith(OCPP_PATH_PREFIXES)
        ):
            await self._gateway(scope, receive, send)
            return
        await self._api(scope, receive, send)
