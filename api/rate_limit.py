"""Per-client (or per-IP) request rate limits, chosen by path prefix, with the `limits` library."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from api.asgi_types import ASGIApp, Receive, Scope, Send
from api.auth import client_from_scope
from api.errors import error_response

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RouteClass:
    """A group of routes sharing one budget per caller."""

    name: str
    limit: RateLimitItem


DEFAULT = RouteClass("default", parse("60/minute"))
# First matching prefix wins; new routers under these prefixes are covered without code.
ROUTE_CLASSES: tuple[tuple[str, RouteClass], ...] = (
    ("/api/v1/payment/webhook", RouteClass("payment_webhook", parse("30/minute"))),
    ("/api/v1/charging", RouteClass("charging", parse("10/minute"))),
    ("/api/v1/balance", RouteClass("balance", parse("10/minute"))),
)
# Probes and scrapers call these on a schedule; throttling them only hides outages.
EXEMPT_PATHS = frozenset({"/health", "/metrics"})
# The simulated provider stands in for O!Dengi, which we do not throttle: the worker polls
# it for every open top-up from one address.
EXEMPT_PREFIXES = ("/simulator/",)


def route_class(path: str) -> RouteClass:
    for prefix, cls in ROUTE_CLASSES:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return cls
    return DEFAULT


def async_storage_uri(uri: str) -> str:
    """`limits` needs the async flavour of a storage URI (memory:// → async+memory://)."""
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    """Counts hits in a moving window in the configured storage."""

    def __init__(self, storage_uri: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(async_storage_uri(storage_uri)))

    async def hit(self, cls: RouteClass, identity: str) -> int | None:
        """None when allowed; otherwise the seconds until the caller may try again."""
        if await self._limiter.hit(cls.limit, cls.name, identity):
            return None
        stats = await self._limiter.get_window_stats(cls.limit, cls.name, identity)
        return max(1, math.ceil(stats.reset_time - time.time()))


class RateLimitMiddleware:
    """Keys authenticated callers by client id (a verified token only, so a forged `sub`
    cannot borrow or exhaust someone else's budget) and everyone else by IP."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self._app = app
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] not in {"http", "websocket"}
            or path in EXEMPT_PATHS
            or path.startswith(EXEMPT_PREFIXES)
        ):
            await self._app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await self._app(scope, receive, send)
            return
        cls = route_class(scope["path"])
        retry_after = await self._limiter.hit(cls, await _identity(scope))
        if retry_after is None:
            await self._app(scope, receive, send)
            return
        log.info("rate limited", route_class=cls.name, path=scope["path"])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "rate limited"})
            return
        response = error_response(
            429,
            "rate_limited",
            f"too many requests; {cls.limit.amount} per {cls.limit.GRANULARITY.name} allowed, "
            f"retry in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)


async def _identity(scope: Scope) -> str:
    client = await client_from_scope(scope)
    if client is not None:
        return f"client:{client.client_id}"
    peer = scope.get("client")
    return f"ip:{peer[0] if peer else 'unknown'}"
