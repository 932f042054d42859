"""Security headers, the CORS allowlist and the request body size limit."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api.asgi_types import ASGIApp, Message, Receive, Scope, Send, header
from api.errors import error_response

# The API serves JSON only: nothing may be loaded, framed or executed from its responses.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"
# Swagger UI is an HTML page that loads its script from a CDN; it gets no strict CSP.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response, including error responses."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        extra = list(BASE_HEADERS)
        if scope["path"] not in DOCS_PATHS:
            extra.append((b"content-security-policy", JSON_CSP.encode()))
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

        await self._app(scope, receive, send_with_headers)


def _is_https(scope: Scope) -> bool:
    # TLS ends at Traefik in production; it tells us the original scheme.
    forwarded = header(scope, "x-forwarded-proto")
    return scope.get("scheme") == "https" or (forwarded or "").lower() == "https"


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, by Content-Length up front or by counting a stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = header(scope, "content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._reject(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"request body exceeds {self._max} bytes"
        )
        await response(scope, receive, send)


def install_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
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
