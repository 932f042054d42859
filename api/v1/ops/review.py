"""`/ops/review`: the review queue. Operators list the sessions and top-ups in `needs_review`;
an admin resolves each with a Review workflow (workflows/review.py): credit a top-up, refund a
session's capture, or close with no money movement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.deps import ApiConfig, Context, DbSession
from api.errors import ApiError
from api.openapi import ErrorBody, errors
from api.ops_audit import audit_action, audit_note
from api.v1.ops.access import CurrentAdmin
from api.v1.ops.review_queue import (
    SETTLEMENT_FAILED,
    ReviewItem,
    sessions_in_review,
    topups_in_review,
)
from api.v1.ops.sessions import temporal_ui_link
from api.v1.ops.workflow_wait import pending_answer, result_or_pending
from db.models import ChargingSessionRecord, TopUp
from domain.contracts.charging import charging_workflow_id
from domain.contracts.review import ReviewRequest, ReviewResult
from domain.contracts.search_attributes import CLIENT_ID, STATION_ID
from domain.contracts.topups import topup_workflow_id
from domain.review import (
    ALLOWED,
    REFUSALS,
    RESOLVED,
    AlreadyResolved,
    Decision,
    ReviewItemNotFound,
    ReviewKind,
    check_decision,
    review_workflow_id,
)
from workflows.review import ReviewWorkflow

router = APIRouter()

MAX_ITEMS = 500
ItemId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]


class ReviewQueue(BaseModel):
    items: list[ReviewItem]
    sessions: int
    topups: int


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    amount_tyiyn: StrictInt | None = Field(
        default=None,
        gt=0,
        le=10**12,
        description="credit: default what the provider confirmed; refund: default the whole "
        "capture; close: none",
    )
    reason: str = Field(min_length=3, max_length=500, description="why; kept in the audit")


class ResolutionAnswer(BaseModel):
    workflow_id: str
    kind: str
    item_id: str
    state: str  # the item's state now: reviewed
    decision: str
    amount_tyiyn: int
    entry_id: int | None
    op_key: str | None
    operator: str
    reason: str
    replayed: bool  # the item was already resolved so: nothing moved this time


def _session_item(
    config: ApiConfig, record: ChargingSessionRecord, captured: int, held: int
) -> ReviewItem:
    workflow_id = charging_workflow_id(record.id)
    return ReviewItem(
        kind=ReviewKind.SESSION,
        item_id=record.id,
        client_id=record.client_id,
        station_id=record.station_id,
        why=record.meter_note or SETTLEMENT_FAILED,
        created_at=record.created_at,
        updated_at=record.updated_at,
        reserved_tyiyn=record.reserved_tyiyn,
        cost_tyiyn=record.cost_tyiyn,
        captured_tyiyn=captured,
        held_tyiyn=held,
        decisions=sorted(ALLOWED[ReviewKind.SESSION]),
        workflow_id=workflow_id,
        temporal_ui_url=temporal_ui_link(config, workflow_id),
        review_workflow_id=review_workflow_id(ReviewKind.SESSION, record.id),
    )


def _topup_item(
    config: ApiConfig, topup: TopUp, why: str, confirmed: int, trans_ids: list[str]
) -> ReviewItem:
    workflow_id = topup_workflow_id(topup.id)
    return ReviewItem(
        kind=ReviewKind.TOPUP,
        item_id=topup.id,
        client_id=topup.client_id,
        station_id=None,
        why=why,
        created_at=topup.created_at,
        updated_at=topup.updated_at,
        amount_tyiyn=topup.amount_tyiyn,
        confirmed_tyiyn=confirmed,
        provider=topup.provider,
        trans_ids=trans_ids,
        decisions=sorted(ALLOWED[ReviewKind.TOPUP]),
        workflow_id=workflow_id,
        temporal_ui_url=temporal_ui_link(config, workflow_id),
        review_workflow_id=review_workflow_id(ReviewKind.TOPUP, topup.id),
    )


@router.get("/review")
async def review_queue(
    *,
    request: Request,
    db: DbSession,
    context: Context,
    kind: ReviewKind | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = 100,
) -> ReviewQueue:
    """Sessions and top-ups in `needs_review`, oldest first, with why and their amounts."""
    audit_note(request).action = "review.list"
    items: list[ReviewItem] = []
    if kind in {None, ReviewKind.SESSION}:
        items += [
            _session_item(context.config, *found) for found in await sessions_in_review(db, limit)
        ]
    if kind in {None, ReviewKind.TOPUP}:
        items += [
            _topup_item(context.config, *found) for found in await topups_in_review(db, limit)
        ]
    audit_note(request).result = {"items": len(items)}
    return ReviewQueue(
        items=items,
        sessions=sum(item.kind == ReviewKind.SESSION for item in items),
        topups=sum(item.kind == ReviewKind.TOPUP for item in items),
    )


async def _search_attributes(
    db: AsyncSession, kind: ReviewKind, item_id: str
) -> TypedSearchAttributes:
    """The item's client (and station): the review shows beside it in the Temporal UI. No
    such item: refused before a workflow starts."""
    if kind is ReviewKind.SESSION:
        record = await db.get(ChargingSessionRecord, item_id)
        if record is not None:
            return TypedSearchAttributes(
                [
                    SearchAttributePair(CLIENT_ID, record.client_id),
                    SearchAttributePair(STATION_ID, record.station_id),
                ]
            )
    else:
        topup = await db.get(TopUp, item_id)
        if topup is not None:
            return TypedSearchAttributes([SearchAttributePair(CLIENT_ID, topup.client_id)])
    raise ReviewItemNotFound(f"no {kind} {item_id!r}")


@router.post(
    "/review/{kind}/{item_id}",
    response_model=ResolutionAnswer,
    responses={
        **errors(404, 409, 422, 503),
        **pending_answer("Still running: ask again"),
        403: {"model": ErrorBody, "description": "Admins only"},
    },
)
async def resolve(
    *,
    request: Request,
    kind: ReviewKind,
    item_id: ItemId,
    body: Resolution,
    admin: CurrentAdmin,
    db: DbSession,
    context: Context,
) -> ResolutionAnswer | JSONResponse:
    """Resolve one item in review (admins). Sending the same decision again answers the first
    resolution (`replayed`); another decision for a resolved item is 409 `already_resolved`."""
    note = audit_action(request, f"review.{body.decision}", f"{kind}:{item_id}", body.reason)
    check_decision(kind, body.decision, body.amount_tyiyn)  # refused before anything starts
    attributes = await _search_attributes(db, kind, item_id)
    workflow_id = review_workflow_id(kind, item_id)
    note.result = {"workflow_id": workflow_id}
    handle = await context.temporal.start_workflow(
        ReviewWorkflow.run,
        ReviewRequest(
            kind=kind,
            item_id=item_id,
            decision=body.decision,
            amount_tyiyn=body.amount_tyiyn,
            reason=body.reason,
            operator=admin.subject,
        ),
        id=workflow_id,
        task_queue=context.config.task_queue,
        # A double click joins the running review; once it has ended, a new run finds the
        # resolution and answers it (or refuses another decision).
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=attributes,
    )
    result = await result_or_pending(
        handle, note, context.config.ops.ops_command_wait_s, failed=(409, "review_failed", "review")
    )
    if isinstance(result, JSONResponse):
        return result
    note.result = _audit_result(workflow_id, result)
    return _answer(workflow_id, body, result)


def _audit_result(workflow_id: str, result: ReviewResult) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "outcome": result.outcome,
        "decision": result.decision,
        "amount_tyiyn": result.amount_tyiyn,
        "entry_id": result.entry_id,
        "replayed": result.replayed,
        **({"code": result.code} if result.code else {}),
    }


def _answer(workflow_id: str, body: Resolution, result: ReviewResult) -> ResolutionAnswer:
    if result.outcome != "resolved":
        refusal = REFUSALS.get(result.code or "")
        if refusal is None:
            raise ApiError(409, result.code or "review_refused", result.message)
        raise refusal(result.message)
    # A concurrent request with another decision joined this one's workflow.
    if result.decision != body.decision or body.amount_tyiyn not in {None, result.amount_tyiyn}:
        raise AlreadyResolved(
            f"{result.kind} {result.item_id} was resolved with {result.decision} of "
            f"{result.amount_tyiyn} tyiyn by {result.operator}"
        )
    return ResolutionAnswer(
        workflow_id=workflow_id,
        kind=result.kind,
        item_id=result.item_id,
        state=RESOLVED,
        decision=result.decision,
        amount_tyiyn=result.amount_tyiyn,
        entry_id=result.entry_id,
        op_key=result.op_key,
        operator=result.operator,
        reason=result.reason,
        replayed=result.replayed,
    )
