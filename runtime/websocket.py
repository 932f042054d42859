"""uvicorn's sans-I/O websocket protocol, telling the gateway when a charger's socket shows
life below OCPP: a pong to our keepalive ping, or a ping of its own.

OCPP-J lets WebSocket ping/pong replace most Heartbeats, and widely used chargers rely on
it; ASGI carries no control frames, so the protocol object itself is handed to the gateway
in the scope's extensions (gateway/liveness.py reads `heard_at`)."""

from __future__ import annotations

import time
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway.liveness import WIRE_LIVENESS


class LivenessWebSocketProtocol(WebSocketsSansIOProtocol):
    heard_at: float = 0.0  # time.time() of the last ping or pong from the peer

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is not None:  # None: the upgrade was answered with an HTTP error
            scope.setdefault("extensions", {})[WIRE_LIVENESS] = self

    def handle_ping(self) -> None:
        self.heard_at = time.time()
        super().handle_ping()

    def handle_pong(self, event: Any) -> None:
        self.heard_at = time.time()
        super().handle_pong(event)
