"""`/health`: 200 only when both PostgreSQL and Temporal answer; otherwise 503 naming the
dependency that is missing (`missing`), for probes and for the operator reading them."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import Context

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 3.0


async def _database_ok(context: Context) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), context.db_sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _temporal_ok(context: Context) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await context.temporal.service_client.check_health()
    except Exception:
        return False


@router.get(
    "/health", responses={503: {"description": "degraded: the same body names what is unreachable"}}
)
async def health(context: Context) -> JSONResponse:
    database, temporal = await asyncio.gather(_database_ok(context), _temporal_ok(context))
    missing = [name for name, ok in (("database", database), ("temporal", temporal)) if not ok]
    body: dict[str, object] = {
        "status": "ok" if database and temporal else "degraded",
        "database": "ok" if database else "unreachable",
        "temporal": "ok" if temporal else "unreachable",
        "missing": missing,
    }
    return JSONResponse(body, status_code=200 if database and temporal else 503)
