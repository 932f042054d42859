"""How an operator's request waits for its workflow (a charger command, a station change, a
review, a balance adjustment): the result within the wait, or 202 with the workflow id to ask
again (the workflow goes on); a workflow that failed is an error naming it. The audit row
records which it was."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.client import WorkflowFailureError, WorkflowHandle

from api.errors import ApiError
from api.ops_audit import AuditNote

R = TypeVar("R")
# Not kept by a browser, a proxy or the Idempotency-Key store (api/idempotency.py honours it).
NO_STORE = {"Cache-Control": "no-store"}


class WorkflowPending(BaseModel):
    workflow_id: str
    state: str  # running


def pending_answer(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entry of a route's 202."""
    return {202: {"model": WorkflowPending, "description": description}}


def still_running(
    note: AuditNote, workflow_id: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    note.result = {"workflow_id": workflow_id, "outcome": "pending"}
    pending = WorkflowPending(workflow_id=workflow_id, state="running")
    # A retry with the same Idempotency-Key must join the workflow and get its answer, not
    # this one replayed from the key's store.
    return JSONResponse(
        pending.model_dump(), status_code=202, headers={**(headers or {}), **NO_STORE}
    )


async def result_or_pending(
    handle: WorkflowHandle[Any, R],
    note: AuditNote,
    wait_s: float | None,
    *,
    failed: tuple[int, str, str],
    headers: Mapping[str, str] | None = None,
) -> R | JSONResponse:
    """The workflow's result, or 202 after `wait_s` (None: wait for it). `failed` is the
    status, code and name ("the {name} workflow ... failed") of a failed workflow's error."""
    workflow_id = handle.id
    try:
        return await asyncio.wait_for(handle.result(), timeout=wait_s)
    except TimeoutError:
        return still_running(note, workflow_id, headers)
    except WorkflowFailureError as exc:
        note.result = {"workflow_id": workflow_id, "outcome": "failed"}
        status, code, name = failed
        raise ApiError(
            status, code, f"the {name} workflow {workflow_id} failed: {exc.cause}"
        ) from None
