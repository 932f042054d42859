"""`POST /ops/sessions/{session_id}/stop`: an operator stops any client's session. It is the
driver's own stop (the `stop` update of the session's workflow, api/v1/charging_service.py),
sent on the owner's behalf with the operator and the reason, so it settles exactly as a
driver's stop does: capture what the charger metered, release the rest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import Context, DbSession
from api.openapi import IDEMPOTENT, errors
from api.ops_audit import audit_action
from api.v1.charging_schemas import ChargingSession
from api.v1.charging_service import ChargingService
from api.v1.ops.access import CurrentOperator
from db.models import ChargingSessionRecord
from domain.contracts.charging import StopCommand, charging_workflow_id
from domain.identifiers import SessionId
from domain.sessions import SessionNotFound

router = APIRouter()


class ForceStop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="why; kept in the audit")


@router.post(
    "/sessions/{session_id}/stop",
    status_code=202,
    responses={**IDEMPOTENT, **errors(404, 422, 503)},
)
async def force_stop(
    *,
    request: Request,
    session_id: Annotated[SessionId, Path()],
    body: ForceStop,
    operator: CurrentOperator,
    db: DbSession,
    context: Context,
) -> ChargingSession:
    """Stop a session, whoever's it is; it settles when the charger confirms (or after the
    grace period), as a driver's stop. A finished session answers as it ended."""
    note = audit_action(request, "sessions.stop", f"session:{session_id}")
    # Every session has its row from admission on (the workflow's first activity).
    owner = await db.scalar(
        select(ChargingSessionRecord.client_id).where(ChargingSessionRecord.id == session_id)
    )
    if owner is None:
        raise SessionNotFound(f"no charging session {session_id!r}")
    command = StopCommand(owner, operator=operator.subject, reason=body.reason)
    session = await ChargingService(context).stop(owner, session_id, command)
    note.result = {
        "workflow_id": charging_workflow_id(session_id),
        "client_id": owner,
        "state": session.state,
    }
    return session
