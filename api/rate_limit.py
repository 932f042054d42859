"""Per-client (or per-IP) request rate limits, chosen by path prefix, with the `limits` library."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from api.asgi_types import ASGIApp, Receive, Scope, Send, header, read_body, replay_body
from api.auth import client_from_scope
from api.errors import error_response
from api.http_middleware import HttpMiddleware
from api.ops_audit import is_ops_path

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RouteClass:
    """A group of routes sharing one budget per caller."""

    name: str
    limit: RateLimitItem


@dataclass(frozen=True)
class RateLimits:
    """The budgets, from settings (RATE_LIMIT_*): `limits` strings such as "10/minute"."""

    money: str = "10/minute"  # POSTs that move money or start/stop a session
    default: str = "60/minute"  # reads and everything else
    webhook: str = "30/minute"  # per payment (order id)
    webhook_sender: str = "600/minute"  # per sending address
    ops: str = "120/minute"  # every request under /api/v1/ops/, per operator

    def classes(self) -> RouteClasses:
        return RouteClasses(
            default=RouteClass("default", parse(self.default)),
            money=tuple(
                (prefix, RouteClass(name, parse(self.money))) for prefix, name in MONEY_PREFIXES
            ),
            webhook=RouteClass("payment_webhook", parse(self.webhook)),
            webhook_sender=RouteClass("payment_webhook_sender", parse(self.webhook_sender)),
            ops=RouteClass("ops", parse(self.ops)),
        )


@dataclass(frozen=True)
class RouteClasses:
    default: RouteClass
    money: tuple[tuple[str, RouteClass], ...]
    webhook: RouteClass
    webhook_sender: RouteClass
    ops: RouteClass

    def for_request(self, method: str, path: str) -> RouteClass:
        """The webhook by its path; money-moving POSTs by prefix (each prefix its own budget);
        reads and the rest share the default, so an app polling a live session or its
        balance stays within it."""
        if path == WEBHOOK_PATH:
            return self.webhook
        if is_ops_path(path):
            # Operators get their own budget: a fleet dashboard polling does not eat into the
            # operator's own app budget, nor an app's into an incident response.
            return self.ops
        if method == "POST":
            for prefix, cls in self.money:
                if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                    return cls
        return self.default


WEBHOOK_PATH = "/api/v1/payment/webhook"
# The webhook's budget is per payment (order id), not per caller: every notice comes from
# the provider's few servers (and, behind a proxy without FORWARDED_ALLOW_IPS, from one
# address), so a per-IP limit would cap the whole system's payments. Per order it still
# stops a retry storm on one payment; forged notices fail the signature check, and the
# per-address ceiling bounds how many of those one sender can make us verify.
WEBHOOK_ORDER_FIELD = "order_id"
# Rejected (forged or malformed) notices written to payment_audit per sender: enough to see
# an attack in the table, bounded so the attack cannot grow it (the log still has each one).
WEBHOOK_REJECTION_AUDIT = RouteClass("payment_webhook_rejection_audit", parse("20/minute"))
# POSTs under these prefixes move money or start/stop a session: (prefix, budget name).
# New routers under them are covered without code.
MONEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/api/v1/charging", "charging"),
    ("/api/v1/balance", "balance"),
    ("/api/v1/payment/h2h-create", "payment_card"),
)
# Probes and scrapers call these on a schedule; throttling them only hides outages.
EXEMPT_PATHS = frozenset({"/health", "/metrics"})
# The simulated provider stands in for O!Dengi, which we do not throttle: the worker polls
# it for every open top-up from one address.
EXEMPT_PREFIXES = ("/simulator/",)
DEFAULT_CLASSES = RateLimits().classes()


def route_class(path: str, method: str = "GET") -> RouteClass:
    """The default budgets' class of a request (tests and docs)."""
    return DEFAULT_CLASSES.for_request(method, path)


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


class RateLimitMiddleware(HttpMiddleware):
    """Keys authenticated callers by client id (a verified token only, so a forged `sub`
    cannot borrow or exhaust someone else's budget) and everyone else by IP."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, limits: RateLimits | None = None
    ) -> None:
        super().__init__(app)
        self._limiter = limiter
        self._classes = (limits or RateLimits()).classes()

    def handles(self, scope: Scope) -> bool:
        """HTTP requests and websocket handshakes, but CORS preflights and exempt paths."""
        path = scope.get("path", "")
        if scope["type"] not in {"http", "websocket"}:
            return False
        if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
            return False
        return not (scope["type"] == "http" and scope["method"] == "OPTIONS")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        cls = self._classes.for_request(scope.get("method", "GET"), scope["path"])
        if cls is self._classes.webhook and scope["type"] == "http":
            body = await read_body(receive)
            receive = replay_body(body, receive)
            retry_after = await self._limiter.hit(self._classes.webhook_sender, _peer(scope))
            order = webhook_order_id(header(scope, "content-type") or "", body)
            if retry_after is None and order is not None:
                retry_after = await self._limiter.hit(cls, f"order:{order}")
            elif retry_after is None:
                retry_after = await self._limiter.hit(cls, _peer(scope))
        else:
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
    return _peer(scope)


def _peer(scope: Scope) -> str:
    # Behind a proxy this is the real caller only when the server trusts the proxy's
    # X-Forwarded-For (uvicorn's forwarded_allow_ips, from FORWARDED_ALLOW_IPS).
    peer = scope.get("client")
    return f"ip:{peer[0] if peer else 'unknown'}"


def webhook_order_id(content_type: str, body: bytes) -> str | None:
    """The payment a webhook notice is about (JSON or form body), or None if it names none."""
    value: object = None
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            value = parse_qs(body.decode(), max_num_fields=100).get(WEBHOOK_ORDER_FIELD, [None])[0]
        else:
            parsed = json.loads(body)
            value = parsed.get(WEBHOOK_ORDER_FIELD) if isinstance(parsed, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    order = str(value).strip()
    return order[:64] if order else None


async def rejection_audit_allowed(request: Request) -> bool:
    """Whether this sender's rejected webhook may still be written to the audit table."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return True
    return await limiter.hit(WEBHOOK_REJECTION_AUDIT, _peer(request.scope)) is None
