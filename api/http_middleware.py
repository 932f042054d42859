"""The shape every pure-ASGI middleware of the API shares."""

from __future__ import annotations

from api.asgi_types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """What every pure-ASGI middleware of the API shares: the requests it handles go to
    `handle`; everything else (websockets, lifespan, requests it does not concern) passes
    through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    def handles(self, scope: Scope) -> bool:
        """Which requests this middleware sees: HTTP ones, unless a subclass says otherwise."""
        return bool(scope["type"] == "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.handles(scope):
            await self.handle(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
