"""`POST /ops/clients/{client_id}/adjustments`: an admin credits or debits a client's available
balance (goodwill, a correction) through a BalanceAdjustment workflow; the Idempotency-Key is
mandatory and becomes the ledger op_key, so a retry never moves money twice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import select
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.deps import Context, DbSession
from api.errors import ApiError
from api.idempotency import IdempotencyKey
from api.openapi import ErrorBody, errors
from api.ops_audit import audit_action
from api.v1.ops.access import CurrentAdmin
from api.v1.ops.workflow_wait import pending_answer, result_or_pending
from db.models import Client, LedgerAccount
from domain.contracts.adjustments import (
    AdjustmentRequest,
    AdjustmentResult,
    adjustment_op_key,
    adjustment_workflow_id,
)
from domain.contracts.search_attributes import CLIENT_ID
from domain.errors import InsufficientFunds, OpKeyConflict
from domain.ledger import AccountKind, AccountRef
from workflows.balance_adjustment import BalanceAdjustmentWorkflow

router = APIRouter()

MAX_ADJUSTMENT_TYIYN = 100_000_000  # 1 000 000 som either way
ClientPath = Annotated[str, Path(min_length=1, max_length=64)]


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_tyiyn: StrictInt = Field(
        ge=-MAX_ADJUSTMENT_TYIYN,
        le=MAX_ADJUSTMENT_TYIYN,
        description="positive: a credit to the available balance; negative: a debit; not 0",
    )
    reason: str = Field(min_length=3, max_length=500, description="why; kept in the audit")


class AdjustmentAnswer(BaseModel):
    workflow_id: str
    client_id: str
    amount_tyiyn: int
    op_key: str
    entry_id: int
    replayed: bool  # the key had been applied before: nothing moved this time
    available_tyiyn: int  # the client's available balance as read after the adjustment


@router.post(
    "/clients/{client_id}/adjustments",
    response_model=AdjustmentAnswer,
    responses={
        **errors(404, 409, 422, 503),
        **pending_answer("Still running: retry with the key"),
        403: {"model": ErrorBody, "description": "Admins only"},
    },
)
async def adjust(
    *,
    request: Request,
    client_id: ClientPath,
    body: Adjustment,
    key: IdempotencyKey,
    admin: CurrentAdmin,
    db: DbSession,
    context: Context,
) -> AdjustmentAnswer | JSONResponse:
    """Credit (positive) or debit (negative) a client's available balance. A debit larger
    than the available balance is refused (409 `balance_would_go_negative`)."""
    note = audit_action(request, "clients.adjust", f"client:{client_id}", body.reason)
    if body.amount_tyiyn == 0:
        raise ApiError(422, "invalid_amount", "amount_tyiyn must not be 0")
    if key is None:
        raise ApiError(
            422,
            "idempotency_key_required",
            "a balance adjustment needs an Idempotency-Key header (its ledger op_key)",
        )
    if await db.get(Client, client_id) is None:
        raise ApiError(404, "client_not_found", f"no client {client_id!r}")
    workflow_id = adjustment_workflow_id(key)
    note.result = {"workflow_id": workflow_id}
    handle = await context.temporal.start_workflow(
        BalanceAdjustmentWorkflow.run,
        AdjustmentRequest(
            client_id=client_id,
            amount_tyiyn=body.amount_tyiyn,
            reason=body.reason,
            operator=admin.subject,
            op_key=adjustment_op_key(key),
        ),
        id=workflow_id,
        task_queue=context.config.task_queue,
        # A retry joins the running workflow; after it ended, a new run meets the op_key in
        # the ledger and answers the first movement again.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes([SearchAttributePair(CLIENT_ID, client_id)]),
    )
    result = await result_or_pending(
        handle,
        note,
        context.config.ops.ops_command_wait_s,
        failed=(503, "adjustment_failed", "adjustment"),
    )
    if isinstance(result, JSONResponse):
        return result
    note.result = {
        "workflow_id": workflow_id,
        "outcome": result.outcome,
        "amount_tyiyn": result.amount_tyiyn,
        "entry_id": result.entry_id,
        "replayed": result.replayed,
        **({"code": result.code} if result.code else {}),
    }
    return await _answer(context, workflow_id, client_id, body, result)


async def _answer(
    context: Context,
    workflow_id: str,
    client_id: str,
    body: Adjustment,
    result: AdjustmentResult,
) -> AdjustmentAnswer:
    if result.code == InsufficientFunds.code:
        raise ApiError(
            409,
            "balance_would_go_negative",
            f"a debit of {-body.amount_tyiyn} tyiyn would make the available balance negative "
            f"({result.message})",
        )
    if result.code == OpKeyConflict.code or (result.client_id, result.amount_tyiyn) != (
        client_id,
        body.amount_tyiyn,
    ):
        # The key names another adjustment (another client or amount, or another admin's).
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used for another adjustment; use a new key",
        )
    if result.outcome != "applied" or result.entry_id is None:
        raise ApiError(409, result.code or "adjustment_refused", result.message)
    async with context.db_sessions() as session:
        available = await session.scalar(
            select(LedgerAccount.balance_tyiyn).where(
                LedgerAccount.code == AccountRef(AccountKind.AVAILABLE, client_id).code
            )
        )
    return AdjustmentAnswer(
        workflow_id=workflow_id,
        client_id=client_id,
        amount_tyiyn=result.amount_tyiyn,
        op_key=result.op_key,
        entry_id=result.entry_id,
        replayed=result.replayed,
        available_tyiyn=int(available or 0),
    )
