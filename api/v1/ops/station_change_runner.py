"""Runs an operator's change to a location, a station or a connector as a StationChange
workflow and answers as the routes did when they wrote the database themselves: a refusal found
in the workflow is raised again as the same domain error (same status, same code), Temporal down
is 503 `temporal_unavailable` (api/errors.py).

The workflow id names the target, the action and the request: with an Idempotency-Key a retry or
a double click joins the same workflow (running or finished) and so applies once; without one,
every request is new.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)

from api.deps import ApiContext, Context
from api.errors import ApiError, temporal_calls
from api.idempotency import IdempotencyKey
from api.ops_audit import AuditNote, audit_action, audit_note
from api.v1.ops.access import CurrentOperator, Operator
from api.v1.ops.command_runner import request_id
from api.v1.ops.station_bodies import Change
from api.v1.ops.workflow_wait import pending_answer, result_or_pending
from api.workflow_start import start_or_join
from db.station_changes import REFUSALS
from domain.contracts.search_attributes import STATION_ID
from domain.contracts.station_changes import (
    ChangeAction,
    StationChangeRequest,
    StationChangeResult,
    key_ref,
    station_change_workflow_id,
)
from workflows.station_change import StationChangeWorkflow

Handle = WorkflowHandle[StationChangeWorkflow, StationChangeResult]
CHANGE_UNAVAILABLE = "the workflow service is unreachable; nothing was changed, retry"


PENDING = pending_answer("Still running: retry with the Idempotency-Key")


@dataclass(frozen=True)
class ChangeRun:
    workflow_id: str
    result: StationChangeResult
    # station.create, station.rotate_key: the key stored is this request's own. False when
    # the request joined a workflow an earlier one started (a retry after its answer was
    # lost): that key was shown once, to the earlier request, and exists nowhere else.
    own_key: bool


def fingerprint(request: Request, body: BaseModel, secret: bytes | None = None) -> str:
    """What was asked (path and the fields sent), canonical: a retry has the same one. It goes
    into the workflow's history, so a body holding a key is digested under `secret` (the key
    pepper), never by a plain hash someone could test guesses against."""
    sent = json.dumps(body.model_dump(mode="json", exclude_unset=True), sort_keys=True)
    data = f"{request.url.path}\0{sent}".encode()
    if secret is not None:
        return hmac.new(secret, data, hashlib.sha256).hexdigest()[:32]
    return hashlib.sha256(data).hexdigest()[:32]


async def _start(
    temporal: Client, task_queue: str, workflow_id: str, change: StationChangeRequest
) -> Handle:
    attributes = [SearchAttributePair(STATION_ID, change.station_id)] if change.station_id else []
    return await start_or_join(
        temporal,
        StationChangeWorkflow.run,
        change,
        id=workflow_id,
        task_queue=task_queue,
        # A retry joins the running workflow; after it completed, it reads its result;
        # after it failed (nothing written: its database stayed away), it runs again.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        # Shown beside the station's sessions and commands in the Temporal UI.
        search_attributes=TypedSearchAttributes(attributes),
        static_summary=f"{change.action} {change.target} by {change.operator}"[:200],
    )


async def run_change(
    request: Request,
    context: ApiContext,
    operator: Operator,
    idempotency_key: str | None,
    change: StationChangeRequest,
) -> ChangeRun | JSONResponse:
    """The applied change, or 202 (still running after OPS_COMMAND_WAIT_S: retry with the same
    Idempotency-Key to join it). Raises the refusal's domain error."""
    note = audit_note(request)
    workflow_id = station_change_workflow_id(
        change.target, ChangeAction(change.action), request_id(operator, idempotency_key)
    )
    note.result = {"workflow_id": workflow_id}
    with temporal_calls(CHANGE_UNAVAILABLE):
        handle = await _start(context.temporal, context.config.task_queue, workflow_id, change)
        result = await result_or_pending(
            handle,
            note,
            context.config.ops.ops_command_wait_s,
            failed=(503, "station_change_failed", "change"),
        )
        if isinstance(result, JSONResponse):
            return result
    if result.fingerprint != change.fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        )
    note.result = {"workflow_id": workflow_id, "outcome": result.outcome}
    if result.outcome == "refused":
        note.result["code"] = result.code
        refusal = REFUSALS.get(result.code or "")
        if refusal is None:
            raise ApiError(409, result.code or "station_change_refused", result.message)
        raise refusal(result.message)
    own_key = change.password_hash is not None and result.key_ref == key_ref(change.password_hash)
    return ChangeRun(workflow_id, result, own_key)


@dataclass(frozen=True)
class StationChanges:
    """One operator request to change a location, a station or a connector: named in the
    audit first (a refusal before any workflow is audited as that action), then run as a
    StationChange workflow."""

    request: Request
    context: ApiContext
    operator: Operator
    idempotency_key: str | None

    def name(self, action: ChangeAction, target: str, body: Change) -> AuditNote:
        """The audit's action, target (as the audit names it) and reason for this request."""
        return audit_action(self.request, action.value, target, body.reason)

    async def run(
        self, body: Change, *, secret: bytes | None = None, **fields: Any
    ) -> ChangeRun | JSONResponse:
        """The change `name` named, with `fields` (StationChangeRequest's), as `run_change`
        runs it. `secret` keys the body's fingerprint when the body may hold a key."""
        note = audit_note(self.request)
        assert note.action is not None and note.target is not None  # `name` comes first
        change = StationChangeRequest(
            action=note.action,
            target=note.target,
            operator=self.operator.subject,
            reason=body.reason,
            fingerprint=fingerprint(self.request, body, secret),
            **fields,
        )
        return await run_change(
            self.request, self.context, self.operator, self.idempotency_key, change
        )


def station_changes(
    request: Request, context: Context, operator: CurrentOperator, key: IdempotencyKey
) -> StationChanges:
    return StationChanges(request, context, operator, key)


Changes = Annotated[StationChanges, Depends(station_changes)]


def key_already_issued(workflow_id: str) -> ApiError:
    return ApiError(
        409,
        "key_already_issued",
        f"this request was applied already (workflow {workflow_id}) and its key was shown "
        "once, in that answer; rotate the key to get a new one",
    )
