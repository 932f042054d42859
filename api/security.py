"""Security headers, the CORS allowlist and the request body size limit."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api.asgi_types import (
    ASGIApp,
    BodyTooLarge,
    Message,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    replay_body,
)
from api.errors import error_response, outage_response
from api.http_middleware import HttpMiddleware

log = structlog.get_logger(__name__)

# JSON responses: nothing may be loaded, framed or executed from them. The few HTML pages
# (/docs, the simulated provider's invoice page) set their own narrow policy (api.page_policy),
# which this middleware leaves in place.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeadersMiddleware(HttpMiddleware):
    """Adds the headers to every HTTP response, including error responses."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = [*BASE_HEADERS, (b"content-security-policy", JSON_CSP.encode())]
        if _is_https(scope):
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                if scope["path"].startswith("/api/") and b"cache-control" not in present:
                    # Balances and sessions are per user; no shared cache may keep them.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception as exc:
            # A failure in middleware never reaches the app's exception handlers: answer the
            # 500 here, so it carries the headers and the JSON error body like any other.
            if started:
                raise
            response = outage_response(exc)  # a database or Temporal outage: 503
            if response is None:
                log.exception("unhandled error", path=scope["path"], error=type(exc).__name__)
                response = error_response(
                    500, "internal_error", "internal error; it has been logged"
                )
            await response(scope, receive, send_with_headers)


def _is_https(scope: Scope) -> bool:
    # TLS ends at Traefik in production; it tells us the original scheme.
    forwarded = header(scope, "x-forwarded-proto")
    return scope.get("scheme") == "https" or (forwarded or "").lower() == "https"


# Deeper JSON than this is no request of ours: refused before anyone parses or hashes it
# (json.loads and every recursive walk over the result raise RecursionError far deeper).
MAX_JSON_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `body`, read as JSON, nests objects/arrays deeper than `limit`. A linear scan
    that skips string contents: it needs no parse, so it cannot recurse."""
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _looks_like_json(scope: Scope, body: bytes) -> bool:
    content_type = (header(scope, "content-type") or "").lower()
    if "json" in content_type:
        return True
    return body.lstrip()[:1] in (b"{", b"[")


class BodySizeLimitMiddleware(HttpMiddleware):
    """Guards request bodies before anyone buffers or parses them: 413 over the size limit (by
    Content-Length up front, or by counting a chunked body while reading it), 400 for JSON
    nested deeper than MAX_JSON_DEPTH. Bodies of POST-like requests are read here once
    (bounded by the limit) and handed on; everything inside sees a checked body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self._max = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = header(scope, "content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._reject(scope, receive, send)
            return
        if scope["method"] in BODY_METHODS:
            try:
                body = await read_body(receive, self._max)
            except BodyTooLarge:
                await self._reject(scope, receive, send)
                return
            if _looks_like_json(scope, body) and json_too_deep(body):
                response = error_response(
                    400, "bad_request", f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
                )
                await response(scope, receive, send)
                return
            await self._app(scope, replay_body(body, receive), send)
            return
        await self._app(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"request body exceeds {self._max} bytes"
        )
        await response(scope, receive, send)


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Browsers may call the API only from the configured origins. Auth is a bearer header,
    never a cookie, so credentials mode stays off."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Retry-After", "Idempotent-Replayed"],
        allow_credentials=False,
        max_age=600,
    )
