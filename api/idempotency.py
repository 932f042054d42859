"""`Idempotency-Key` on POST: the first response is stored for 24 h and replayed to retries;
the same key with another body is refused, a duplicate still in flight gets 409."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.asgi_types import ASGIApp, Message, Receive, Scope, Send, header, read_body, replay_body
from api.auth import client_from_scope
from api.client_scope import client_scope
from api.errors import ApiError, error_response
from api.http_middleware import HttpMiddleware

log = structlog.get_logger(__name__)

HEADER = "idempotency-key"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
RETENTION = timedelta(hours=24)
# A claim older than this with no stored response belongs to a request that died with its
# process; a retry may take it over (start endpoints derive workflow ids from the key, so
# re-running the request cannot make a second session).
IN_FLIGHT_LEASE = timedelta(seconds=60)
MAX_STORED_RESPONSE_BYTES = 256 * 1024
CLEANUP_INTERVAL_S = 600.0
REPLAY_HEADER = "idempotent-replayed"


def valid_key(value: str) -> bool:
    return KEY_PATTERN.fullmatch(value) is not None


def _invalid_key() -> ApiError:
    return ApiError(
        400,
        "invalid_idempotency_key",
        "Idempotency-Key must be 1-200 characters of letters, digits, '.', '_', ':' or '-'",
    )


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            pattern=KEY_PATTERN.pattern,
            description="Makes a retry of this POST safe: the same key and body within 24 h "
            "get the first answer again; 1-200 letters, digits, '.', '_', ':' or '-'",
        ),
    ] = None,
) -> str | None:
    """The request's Idempotency-Key (validated), for endpoints that derive ids from it.
    It is unique per client, not globally: combine it with the client id."""
    if key is None:
        return None
    if not valid_key(key):
        raise _invalid_key()
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


@dataclass(frozen=True)
class Claimed:
    """This request owns the key and must run, then complete or release it."""


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""


@dataclass(frozen=True)
class InFlight:
    """The first request with this key has not finished yet."""


Outcome = Claimed | Replay | Mismatch | InFlight

_CLAIM = text(
    """
    INSERT INTO idempotency_keys (client_id, key, method, path, request_hash, expires_at)
    VALUES (:client_id, :key, :method, :path, :request_hash, now() + CAST(:retention AS interval))
    ON CONFLICT (client_id, key) DO NOTHING
    RETURNING 1
    """
)
_EXISTING = text(
    """
    SELECT method, path, request_hash, status_code, response_body,
           expires_at < now() AS expired, created_at < now() - CAST(:lease AS interval) AS abandoned
    FROM idempotency_keys WHERE client_id = :client_id AND key = :key
    FOR UPDATE
    """
)
_TAKE_OVER = text(
    """
    UPDATE idempotency_keys
    SET method = :method, path = :path, request_hash = :request_hash, status_code = NULL,
        response_body = NULL, created_at = now(), expires_at = now() + CAST(:retention AS interval)
    WHERE client_id = :client_id AND key = :key
    """
)
_COMPLETE = text(
    """
    UPDATE idempotency_keys
    SET status_code = :status_code, response_body = CAST(:body AS jsonb)
    WHERE client_id = :client_id AND key = :key AND status_code IS NULL
    """
)
_RELEASE = text(
    "DELETE FROM idempotency_keys"
    " WHERE client_id = :client_id AND key = :key AND status_code IS NULL"
)
_CLEANUP = text(
    """
    DELETE FROM idempotency_keys WHERE ctid IN (
        SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT 1000)
    """
)


class IdempotencyStore:
    """The idempotency_keys table. Each call is its own short transaction in the client's
    row-level-security scope; only the expiry sweep, which spans clients, runs as the owner."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions
        self._last_cleanup = float("-inf")

    async def claim(
        self, client_id: str, key: str, method: str, path: str, request_hash: str
    ) -> Outcome:
        params = {
            "client_id": client_id,
            "key": key,
            "method": method,
            "path": path,
            "request_hash": request_hash,
            "retention": RETENTION,
            "lease": IN_FLIGHT_LEASE,
        }
        await self._maybe_cleanup()
        async with client_scope(self._db_sessions, client_id) as session:
            if (await session.execute(_CLAIM, params)).first() is not None:
                return Claimed()
            row = (await session.execute(_EXISTING, params)).mappings().first()
            if row is None:
                # Released between our insert and select: the key is free again.
                await session.execute(_CLAIM, params)
                return Claimed()
            if row["expired"]:
                await session.execute(_TAKE_OVER, params)
                return Claimed()
            if (row["method"], row["path"], row["request_hash"]) != (method, path, request_hash):
                return Mismatch()
            if row["status_code"] is None:
                if row["abandoned"]:
                    await session.execute(_TAKE_OVER, params)
                    return Claimed()
                return InFlight()
            return Replay(int(row["status_code"]), row["response_body"])

    async def complete(self, client_id: str, key: str, status_code: int, body: Any) -> None:
        async with client_scope(self._db_sessions, client_id) as session:
            await session.execute(
                _COMPLETE,
                {
                    "client_id": client_id,
                    "key": key,
                    "status_code": status_code,
                    "body": json.dumps(body),
                },
            )

    async def release(self, client_id: str, key: str) -> None:
        async with client_scope(self._db_sessions, client_id) as session:
            await session.execute(_RELEASE, {"client_id": client_id, "key": key})

    async def _maybe_cleanup(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < CLEANUP_INTERVAL_S:
            return
        self._last_cleanup = now
        async with self._db_sessions() as session, session.begin():
            await session.execute(_CLEANUP)


def request_hash(method: str, path: str, body: bytes) -> str:
    """Fingerprint of what was asked; JSON is canonicalised so key order does not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", canonical):
        digest.update(part)
    return digest.hexdigest()


class IdempotencyMiddleware(HttpMiddleware):
    """Applies to authenticated POSTs that carry an Idempotency-Key; all else passes through
    (the payment webhook is unauthenticated and has the provider's own dedup)."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore) -> None:
        super().__init__(app)
        self._store = store

    def handles(self, scope: Scope) -> bool:
        return super().handles(scope) and scope["method"] == "POST"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, HEADER)
        if key is None:
            await self._app(scope, receive, send)
            return
        # Who is asking comes first: an unauthenticated request is 401 whatever its headers
        # hold (the app refuses it), and nothing of it is stored.
        client = await client_from_scope(scope)
        if client is None:
            await self._app(scope, receive, send)
            return
        if not valid_key(key):
            error = _invalid_key()
            await error_response(error.status, error.code, error.message)(scope, receive, send)
            return
        body = await read_body(receive)
        fingerprint = request_hash("POST", scope["path"], body)
        outcome = await self._store.claim(client.client_id, key, "POST", scope["path"], fingerprint)
        if isinstance(outcome, Replay):
            replay = JSONResponse(
                outcome.body, status_code=outcome.status_code, headers={REPLAY_HEADER: "true"}
            )
            await replay(scope, receive, send)
        elif isinstance(outcome, Mismatch):
            await error_response(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
            )(scope, receive, send)
        elif isinstance(outcome, InFlight):
            await error_response(
                409,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry later",
                {"Retry-After": "1"},
            )(scope, receive, send)
        else:
            await self._run_and_store(
                scope, body, receive, send, client_id=client.client_id, key=key
            )

    async def _run_and_store(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, *, client_id: str, key: str
    ) -> None:
        capture = _Capture(send)
        try:
            await self._app(scope, replay_body(body, receive), capture.send)
        except BaseException:
            await _shielded(self._store.release(client_id, key))
            raise
        stored = capture.storable()
        if stored is None:
            await _shielded(self._store.release(client_id, key))
        else:
            await _shielded(self._store.complete(client_id, key, stored[0], stored[1]))


class _Capture:
    """Passes the response through while keeping a copy worth storing."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status_code: int | None = None
        self.json = False
        self.no_store = False
        self.chunks: list[bytes] = []
        self.size = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status_code = int(message["status"])
            found = dict(message.get("headers", []))
            content_type = found.get(b"content-type", b"")
            self.json = content_type.startswith(b"application/json")
            # An answer marked no-store (a charger key shown once) is not kept for replay.
            self.no_store = b"no-store" in found.get(b"cache-control", b"").lower()
        elif message["type"] == "http.response.body":
            chunk = bytes(message.get("body", b""))
            self.size += len(chunk)
            if self.size <= MAX_STORED_RESPONSE_BYTES:
                self.chunks.append(chunk)
        await self._send(message)

    def storable(self) -> tuple[int, Any] | None:
        """(status, body) when the outcome is final; 5xx, no-store and odd responses are not
        kept, so a retry runs the request again."""
        if self.status_code is None or self.status_code >= 500 or not self.json or self.no_store:
            return None
        if self.size > MAX_STORED_RESPONSE_BYTES:
            return None
        try:
            return self.status_code, json.loads(b"".join(self.chunks) or b"null")
        except ValueError:
            return None


async def _shielded(operation: Any) -> None:
    try:
        await asyncio.shield(operation)
    except Exception:
        log.exception("idempotency bookkeeping failed")
