"""Installs the API platform's middleware in its one correct order, and `/metrics`."""

from __future__ import annotations

from fastapi import FastAPI

from api import metrics
from api.deps import ApiContext
from api.idempotency import IdempotencyMiddleware, IdempotencyStore
from api.ops_audit import OpsAuditMiddleware
from api.rate_limit import RateLimiter, RateLimitMiddleware, RateLimits
from api.security import BodySizeLimitMiddleware, SecurityHeadersMiddleware, install_cors


def install_platform(app: FastAPI, context: ApiContext) -> None:
    """Outermost first: metrics see every response; security headers and CORS decorate
    every response, errors included; the size limit guards the body before anyone buffers
    it; rate limiting runs before idempotency so replays are counted too; every request
    under /api/v1/ops/ is audited (api/ops_audit.py)."""
    config = context.config
    # add_middleware puts each new one outside the previous: add innermost first.
    app.add_middleware(IdempotencyMiddleware, store=IdempotencyStore(context.db_sessions))
    # Outside idempotency (a replayed answer is audited too), inside the rate limit (its
    # budget bounds how many rows one caller can add).
    app.add_middleware(OpsAuditMiddleware, db_sessions=context.db_sessions)
    limiter = RateLimiter(config.rate_limits.rate_limit_storage_uri)
    app.state.rate_limiter = limiter  # also bounds the audit of rejected webhooks
    limits = RateLimits(
        money=config.rate_limits.rate_limit_money,
        default=config.rate_limits.rate_limit_default,
        webhook=config.rate_limits.rate_limit_webhook,
        ops=config.rate_limits.rate_limit_ops,
    )
    app.add_middleware(RateLimitMiddleware, limiter=limiter, limits=limits)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.http.max_request_bytes)
    install_cors(app, config.http.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(metrics.MetricsMiddleware)
    app.include_router(metrics.router)
