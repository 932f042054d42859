"""`/charging`: start and stop sessions (their workflows), read one session or the client's list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.auth import CurrentClient
from api.deps import Context
from api.idempotency import IdempotencyKey
from api.openapi import AUTHENTICATED, IDEMPOTENT, errors
from api.v1.charging_schemas import (
    ChargingSession,
    ChargingSessionPage,
    StartCharging,
    StopCharging,
)
from api.v1.charging_service import ChargingService, StartUnanswered
from domain.identifiers import SessionId

router = APIRouter(prefix="/charging", tags=["charging"])


@router.post(
    "/start",
    status_code=201,
    response_model=ChargingSession,
    responses={**IDEMPOTENT, **errors(402, 404)},
)
async def start_charging(
    body: StartCharging, client: CurrentClient, context: Context, key: IdempotencyKey
) -> ChargingSession | JSONResponse:
    """Reserve `amount_tyiyn` and ask the charger to start. Refusals: 402 insufficient_funds;
    404 station_not_found / connector_not_found; 409 station_offline, connector_busy,
    connector_unavailable, already_charging; 422 invalid_amount. A refused start reserves
    nothing. With the same Idempotency-Key a retry returns the same session. 503 when the
    session service did not answer: its body's `error.session_id` names the session that may
    have started, to read or stop."""
    try:
        return await ChargingService(context).start(client.client_id, body, key)
    except StartUnanswered as exc:
        error = {"code": exc.code, "message": exc.message, "session_id": exc.session_id}
        return JSONResponse({"error": error}, status_code=exc.status, headers=exc.headers)


@router.post("/stop", status_code=202, responses={**IDEMPOTENT, **errors(404)})
async def stop_charging(
    body: StopCharging, client: CurrentClient, context: Context
) -> ChargingSession:
    """Ask the session to stop; it settles when the charger confirms (or after the grace
    period). Someone else's session is 404."""
    return await ChargingService(context).stop(client.client_id, body.session_id)


@router.get("", responses=AUTHENTICATED)
async def list_sessions(
    client: CurrentClient,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> ChargingSessionPage:
    """The client's sessions, newest first, as recorded (live ones at their last recorded
    state; GET /charging/{session_id} shows them live)."""
    return await ChargingService(context).page(client.client_id, limit, cursor)


@router.get("/{session_id}", responses={**AUTHENTICATED, **errors(404)})
async def get_session(
    session_id: Annotated[SessionId, Path()], client: CurrentClient, context: Context
) -> ChargingSession:
    """Live while the session runs (state from the workflow, energy and cost from the latest
    stored meter value), final from the database once settled."""
    return await ChargingService(context).get(client.client_id, session_id)
