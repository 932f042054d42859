"""Starts a StationCommand workflow for an operator's request, waits a while for the charger's
answer, and maps the workflow's outcome to HTTP."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)

from api.errors import ApiError
from api.ops_audit import audit_note
from api.v1.ops.access import Operator
from api.v1.ops.command_bodies import COMMANDS, ChangeAvailabilityBody, CommandBody
from api.v1.ops.workflow_wait import result_or_pending
from api.workflow_start import start_or_join
from domain.contracts.operator_commands import Outcome, StationCommandRequest, StationCommandResult
from domain.contracts.search_attributes import STATION_ID
from workflows.station_command import StationCommandWorkflow

Handle = WorkflowHandle[StationCommandWorkflow, StationCommandResult]


class CommandAnswer(BaseModel):
    workflow_id: str
    station_id: str
    command: str
    outcome: str  # answered: the charger's `status` says what it made of it
    status: str | None
    response: dict[str, Any]


# Outcome -> (HTTP status, error code) for everything but an answer.
_ERRORS: dict[str, tuple[int, str]] = {
    Outcome.UNKNOWN_STATION: (404, "station_not_found"),
    Outcome.OFFLINE: (409, "station_offline"),
    Outcome.BUSY: (409, "connector_busy"),
    Outcome.INVALID: (422, "invalid_command"),
    Outcome.CALL_ERROR: (502, "station_call_error"),
    Outcome.NO_ANSWER: (504, "station_timeout"),
}


def request_id(operator: Operator, idempotency_key: str | None) -> str:
    """With an Idempotency-Key, a retry names the same workflow (keys are per caller, so the
    caller's tag is part of it); without one, every request is new."""
    if idempotency_key is None:
        return uuid.uuid4().hex[:16]
    tag = hashlib.sha256(operator.subject.encode()).hexdigest()[:8]
    return f"{tag}-{idempotency_key}"


def workflow_request(
    station_id: str, command: str, body: CommandBody, operator: Operator
) -> StationCommandRequest:
    guard = None
    if isinstance(body, ChangeAvailabilityBody) and body.type == "Inoperative":
        guard = body.connector_id
    return StationCommandRequest(
        station_id=station_id,
        command=COMMANDS[command][0],
        params=body.params(),
        operator=operator.subject,
        reason=body.reason,
        guard_connector_id=guard,
        force=isinstance(body, ChangeAvailabilityBody) and body.force,
    )


async def start_command(
    temporal: Client, task_queue: str, workflow_id: str, request: StationCommandRequest
) -> Handle:
    return await start_or_join(
        temporal,
        StationCommandWorkflow.run,
        request,
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        # Shown beside the station's sessions in the Temporal UI.
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(STATION_ID, request.station_id)]
        ),
    )


async def answer(
    request: Request, handle: Handle, station_id: str, command: str, wait_s: float | None
) -> CommandAnswer | JSONResponse:
    """The charger's answer, or 202 when the workflow runs past `wait_s` (None: it has ended,
    take its result)."""
    note = audit_note(request)
    workflow_id = handle.id
    result = await result_or_pending(
        handle, note, wait_s, failed=(503, "command_failed", "command")
    )
    if isinstance(result, JSONResponse):
        return result
    note.result = {
        "workflow_id": workflow_id,
        "outcome": result.outcome,
        "status": result.status,
        **({"live_sessions": result.live_sessions} if result.live_sessions else {}),
    }
    if result.outcome != Outcome.ANSWERED:
        status, code = _ERRORS.get(result.outcome, (502, "command_failed"))
        sessions = f" (sessions {', '.join(result.live_sessions)})" if result.live_sessions else ""
        raise ApiError(status, code, f"{result.message}{sessions}; workflow {workflow_id}")
    return CommandAnswer(
        workflow_id=workflow_id,
        station_id=station_id,
        command=command,
        outcome=result.outcome,
        status=result.status,
        response=result.response,
    )
