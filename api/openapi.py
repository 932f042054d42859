"""The OpenAPI contract: every error status each endpoint can answer, with the one error body,
and the limits that live in configuration (amounts), so clients and fuzzers see the truth."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from api.deps import ApiConfig


class ErrorDetail(BaseModel):
    # Some errors carry more (a 503 start names the session that may exist: `session_id`).
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Malformed request (unreadable body, JSON nested too deep, bad Idempotency-Key)",
    401: "Missing or invalid bearer token (or, for the webhook, a bad signature)",
    402: "Insufficient funds, or the card was declined",
    403: "The token is valid but its role may not do this (operations API: operator or admin)",
    404: "Not found (someone else's object looks exactly like a missing one)",
    409: "Conflict: busy connector, station offline, an RFID card already linked (to this "
    "or another account), a request with this Idempotency-Key still in progress",
    413: "Request body too large",
    422: "Invalid input: a field's type, pattern, length or range, an amount outside the "
    "configured limits, an Idempotency-Key reused for another request",
    429: "Rate limited; see Retry-After",
    501: "Not configured on this system",
    502: "The payment provider refused or failed",
    503: "A dependency (database, Temporal) is unavailable; see Retry-After",
    504: "The payment provider did not answer in time; retry with the same Idempotency-Key",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error body."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


# What any API route may answer whatever it does: the body guard, validation, rate limits,
# and the outage mapping.
COMMON = errors(400, 413, 422, 429, 503)
# Routes that need a bearer token.
AUTHENTICATED = errors(401)
# POSTs with an Idempotency-Key (a duplicate still running is 409; reuse for another body 422).
IDEMPOTENT = errors(401, 409)

# Request bodies whose `amount_tyiyn` limits come from configuration.
_CHARGE_BODIES = ("StartCharging",)
_TOPUP_BODIES = ("TopUpRequest", "H2HRequest")


def install_openapi(app: FastAPI, config: ApiConfig) -> None:
    """Generate the document once, with the configured amount limits written into it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        components = schema.get("components", {}).get("schemas", {})
        for name in _CHARGE_BODIES:
            _limit_amount(
                components, name, config.amounts.charge_min_tyiyn, config.amounts.charge_max_tyiyn
            )
        for name in _TOPUP_BODIES:
            _limit_amount(
                components, name, config.amounts.topup_min_tyiyn, config.amounts.topup_max_tyiyn
            )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _limit_amount(components: dict[str, Any], name: str, low: int, high: int) -> None:
    amount = components.get(name, {}).get("properties", {}).get("amount_tyiyn")
    if amount is not None:
        amount.update(
            minimum=low,
            maximum=high,
            description=f"Amount in tyiyn (1 som = 100 tyiyn), {low}-{high} on this system",
        )
