"""`operator_audit`: every request under /api/v1/ops/ leaves one row, written by a middleware
so no route can forget it — refused, invalid and failed requests included.

The route says what it did (`audit_note(request)`: action, target, reason, result); the
middleware adds who (the verified token), the request summary and how it ended, and writes
the row before the response leaves, so a caller that has its answer finds its row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.asgi_types import ASGIApp, Message, Receive, Scope, Send, read_body, replay_body
from api.auth import client_from_scope
from api.http_middleware import HttpMiddleware
from db.models import OperatorAudit

log = structlog.get_logger(__name__)

OPS_PREFIX = "/api/v1/ops"
_NOTE_KEY = "evpower.ops_audit"
MAX_SUMMARY_BYTES = 4_096
MAX_REASON = 500
# Field names whose values never reach the audit table (a charger key set through
# ChangeConfiguration travels as {"key": "AuthorizationKey", "value": ...}).
SECRET_FIELDS = frozenset({"password", "secret", "token", "authorization_key", "api_key"})
SECRET_CONFIGURATION_KEYS = frozenset({"authorizationkey"})
MASK = "***"


@dataclass
class AuditNote:
    """What the route knows about the request; the middleware fills in the rest."""

    action: str | None = None
    target: str | None = None
    reason: str | None = None
    result: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def is_ops_path(path: str) -> bool:
    return path == OPS_PREFIX or path.startswith(OPS_PREFIX + "/")


def audit_note(request: Request) -> AuditNote:
    """The current request's note (a fresh one outside the audited prefix, e.g. in tests)."""
    note = request.scope.get(_NOTE_KEY)
    if not isinstance(note, AuditNote):
        note = AuditNote()
        request.scope[_NOTE_KEY] = note
    return note


def audit_action(
    request: Request, action: str, target: str, reason: str | None = None
) -> AuditNote:
    """Names what this request does in its audit row; a route does it first, so a request it
    then refuses is audited as that action too."""
    note = audit_note(request)
    note.action, note.target, note.reason = action, target, reason
    return note


def outcome_of(status: int) -> str:
    if status == 202:
        return "pending"
    if status < 400:
        return "ok"
    if status in {401, 403, 429}:
        return "refused"
    if status < 500:
        return "rejected"
    return "failed"


def masked(value: Any) -> Any:
    """A copy of a JSON value with secrets replaced by `***`."""
    if isinstance(value, dict):
        secret_entry = str(value.get("key", "")).lower() in SECRET_CONFIGURATION_KEYS
        return {
            name: MASK
            if name.lower() in SECRET_FIELDS or (secret_entry and name == "value")
            else masked(item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def storable(value: Any) -> Any:
    """PostgreSQL keeps no NUL character in text or jsonb (a hostile body can hold `\\u0000`):
    replaced by U+FFFD, so the row is still written and still says what was sent."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(name): storable(item) for name, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def body_summary(body: bytes) -> Any:
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"unparsed_bytes": len(body)}
    summary = masked(parsed)
    if len(json.dumps(summary)) > MAX_SUMMARY_BYTES:
        return {"truncated_bytes": len(body)}
    return summary


def _error_code(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code)[:64] if code is not None else None


class OpsAuditMiddleware(HttpMiddleware):
    """Holds the response of an ops request until its audit row is written (ops answers are
    small; the fleet list is the largest), then sends it."""

    def __init__(self, app: ASGIApp, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(app)
        self._db_sessions = db_sessions

    def handles(self, scope: Scope) -> bool:
        return super().handles(scope) and is_ops_path(scope.get("path", ""))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        note = AuditNote()
        scope[_NOTE_KEY] = note
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self._app(scope, replay_body(body, receive), hold)
        except Exception:
            await self._write(scope, body, note, 500, None)
            raise
        status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
        response_body = b"".join(
            bytes(m.get("body", b"")) for m in held if m["type"] == "http.response.body"
        )
        await self._write(scope, body, note, status, response_body)
        for message in held:
            await send(message)

    async def _write(
        self, scope: Scope, body: bytes, note: AuditNote, status: int, response: bytes | None
    ) -> None:
        caller = await client_from_scope(scope)
        parsed = body_summary(body)
        reason = note.reason
        if reason is None and isinstance(parsed, dict) and isinstance(parsed.get("reason"), str):
            reason = parsed["reason"]
        route = scope.get("route")
        summary: dict[str, Any] = {"query": scope.get("query_string", b"").decode("latin-1")}
        if parsed is not None:
            summary["body"] = parsed
        summary.update(note.extra)
        row = OperatorAudit(
            subject=storable(caller.client_id) if caller else None,
            role=(caller.operator.value if caller.operator else "client") if caller else None,
            method=str(scope.get("method", ""))[:8],
            path=storable(str(scope.get("path", ""))[:512]),
            action=storable((note.action or getattr(route, "name", None) or "unknown")[:64]),
            target=storable(note.target[:128]) if note.target else None,
            reason=storable(reason[:MAX_REASON]) if reason else None,
            request=storable(summary),
            outcome=outcome_of(status),
            status_code=status,
            error_code=storable(_error_code(response))
            if response is not None and status >= 400
            else None,
            result=storable(note.result),
        )
        try:
            async with self._db_sessions() as session, session.begin():
                session.add(row)
        except Exception as exc:  # the answer still goes out; the log keeps the record
            log.error(
                "operator audit not written",
                error=type(exc).__name__,
                subject=row.subject,
                action=row.action,
                target=row.target,
                status_code=status,
            )
