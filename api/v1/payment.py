"""`/payment`: the provider's webhook, host-to-host card payments and a top-up's status."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import CurrentClient
from api.client_db import ClientDb
from api.deps import ApiConfig, Context, DbSession
from api.errors import TEMPORAL_UNAVAILABLE, ApiError, unavailable
from api.openapi import AUTHENTICATED, errors
from api.rate_limit import rejection_audit_allowed
from api.v1.payment_unread import keep_unread_notice
from db.models import ProviderTransaction, TopUp
from db.payment_audit import write_payment_audit
from domain.contracts.search_attributes import CLIENT_ID
from domain.contracts.topups import reconciliation_workflow_id, topup_workflow_id
from domain.identifiers import TopUpId
from domain.money import format_som
from payments.config import ProviderSettings
from payments.provider import (
    PaymentNotice,
    PayStatus,
    ProviderName,
    UnreadNotice,
)
from payments.webhook import InvalidNotice, untrusted_reason, verify_and_parse
from workflows.reconciliation import PaymentReconciliation, ReconcileInput
from workflows.topup import TopUpWorkflow

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/payment", tags=["payment"])

# O!Dengi waits 5 s for our answer; leave room for the network.
WEBHOOK_BUDGET_S = 4.0


async def audit(
    db: DbSession,
    event: str,
    provider: str,
    *,
    ok: bool,
    topup_id: str | None = None,
    trans_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one payment event now (the writer masks it) and commit."""
    write_payment_audit(
        db, event, provider, topup_id=topup_id, trans_id=trans_id, ok=ok, details=details
    )
    await db.commit()


# ---- webhook --------------------------------------------------------------------------------


async def _webhook_fields(request: Request) -> dict[str, object]:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            return {key: value for key, value in form.items() if isinstance(value, str)}
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_request", "the webhook body is neither JSON nor a form") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the webhook body must be an object")
    # The provider sends flat fields; nested values are no field of a notice.
    return {str(key): value for key, value in body.items() if not isinstance(value, dict | list)}


async def route_notice(
    temporal: Client, config: ApiConfig, notice: PaymentNotice, client_id: str | None
) -> str:
    """Signal the top-up's workflow; if it is gone, hand the payment to reconciliation."""
    try:
        handle = temporal.get_workflow_handle_for(
            TopUpWorkflow.run, topup_workflow_id(notice.order_id)
        )
        await handle.signal(TopUpWorkflow.payment_notified, notice)
        return "topup"
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
    attributes = (
        TypedSearchAttributes([SearchAttributePair(CLIENT_ID, client_id)]) if client_id else None
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await temporal.start_workflow(
            PaymentReconciliation.run,
            ReconcileInput(provider=config.provider.provider.value, notice=notice),
            id=reconciliation_workflow_id(notice.trans_id),
            task_queue=config.task_queue,
            # Replays while it runs join it; once it succeeded the payment is settled.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=attributes,
            static_summary=f"late payment {notice.trans_id} for order {notice.order_id}",
        )
    return "reconciliation"


def screened(notice: PaymentNotice, settings: ProviderSettings) -> PaymentNotice:
    """With the real provider, a test payment or another site's payment is well signed but not
    money for this merchant: it is marked untrusted, so it goes to review, never to the ledger."""
    if settings.provider is not ProviderName.ODENGI:
        return notice
    reason = untrusted_reason(
        notice, site_id=settings.effective_merchant_id, test_mode=settings.test_mode
    )
    return replace(notice, untrusted=reason) if reason else notice


async def record_receipt(
    db: DbSession, provider: str, notice: PaymentNotice, topup_id: str | None
) -> None:
    """Keep a paid notice durably before anyone is told about it: whatever happens to the
    signal, the hourly sweep finds a `received` row that is neither credited nor in review."""
    await db.execute(
        insert(ProviderTransaction)
        .values(
            provider=provider,
            trans_id=notice.trans_id,
            topup_id=topup_id,
            invoice_id=notice.invoice_id,
            status="review" if notice.untrusted else "received",
            amount_tyiyn=notice.amount_tyiyn,
            currency=notice.currency[:3],
        )
        .on_conflict_do_nothing(index_elements=["provider", "trans_id"])
    )


@router.post("/webhook", responses=errors(401))
async def webhook(request: Request, context: Context, db: DbSession) -> dict[str, str]:
    """O!Dengi's result_url. A bad hash is refused (401) and audited; a good one is never
    dropped: it is recorded, then reaches the top-up's workflow or a reconciliation workflow."""
    settings = context.config.provider
    provider = settings.provider.value
    fields = await _webhook_fields(request)
    try:
        notice = verify_and_parse(fields, settings.effective_password, settings.contract)
    except InvalidNotice as exc:
        details = {"order_id": str(fields.get("order_id", ""))[:64], "reason": exc.message}
        trans_id = str(fields.get("trans_id", ""))[:64] or None
        # Forged notices are audited, but one sender cannot fill the table: past its audit
        # budget a rejection is only logged (the writer makes whatever is kept storable).
        if await rejection_audit_allowed(request):
            await audit(
                db, "webhook_rejected", provider, ok=False, trans_id=trans_id, details=details
            )
        log.warning("webhook rejected", reason=exc.message, trans_id=repr(trans_id)[:80])
        if exc.signature:
            raise ApiError(401, "invalid_signature", "the webhook hash does not match") from None
        # 400, not 5xx: a malformed notice never becomes valid, so the provider must not retry.
        raise ApiError(400, "invalid_notice", exc.message) from None
    if isinstance(notice, UnreadNotice):  # signed, so kept: see api/v1/payment_unread.py
        return await keep_unread_notice(
            db,
            context.temporal,
            provider,
            notice,
            fields,
            task_queue=context.config.task_queue,
            budget_s=WEBHOOK_BUDGET_S,
        )
    notice = screened(notice, settings)
    try:
        owner = await db.scalar(select(TopUp.client_id).where(TopUp.order_id == notice.order_id))
        topup_id = notice.order_id if owner else None
        if notice.status is PayStatus.PAID:
            await record_receipt(db, provider, notice, topup_id)
        write_payment_audit(
            db,
            "webhook_untrusted" if notice.untrusted else "webhook_received",
            provider,
            ok=notice.untrusted is None,
            topup_id=topup_id,
            trans_id=notice.trans_id,
            details={
                "status_pay": int(notice.status),
                "amount_tyiyn": notice.amount_tyiyn,
                "currency": notice.currency,
                "invoice_id": notice.invoice_id,
                "site_id": notice.site_id,
                "test": notice.test,
                "reason": notice.untrusted,
            },
        )
        await db.commit()
    except (SQLAlchemyError, OSError) as exc:
        # Nothing recorded: a 5xx makes the provider deliver it again.
        log.error("webhook not recorded", trans_id=notice.trans_id, error=type(exc).__name__)
        raise ApiError(503, "unavailable", "payment not recorded; please retry") from None
    if notice.status is not PayStatus.PAID:
        return {"status": "ok", "routed": "none"}
    try:
        async with asyncio.timeout(WEBHOOK_BUDGET_S):
            routed = await route_notice(context.temporal, context.config, notice, owner)
    except (TimeoutError, RPCError) as exc:
        # Recorded, so not lost (the hourly sweep settles it); a 5xx also makes the provider
        # retry, which usually reaches the workflow sooner.
        log.error("webhook not routed", trans_id=notice.trans_id, error=type(exc).__name__)
        raise unavailable(TEMPORAL_UNAVAILABLE, "payment accepted later; please retry") from None
    log.info("webhook routed", trans_id=notice.trans_id, order_id=notice.order_id, to=routed)
    return {"status": "ok", "routed": routed}


# ---- status ---------------------------------------------------------------------------------


class TopUpStatus(BaseModel):
    topup_id: str
    state: str
    method: str
    amount_tyiyn: int
    amount: str
    currency: str
    invoice_id: str | None
    expires_at: datetime | None
    paid: bool
    created_at: datetime
    updated_at: datetime


@router.get("/status", responses={**AUTHENTICATED, **errors(404)})
async def status(
    client: CurrentClient, db: ClientDb, topup_id: Annotated[TopUpId, Query()]
) -> TopUpStatus:
    row = await db.scalar(
        select(TopUp).where(TopUp.id == topup_id, TopUp.client_id == client.client_id)
    )
    if row is None:  # someone else's top-up looks exactly like a missing one
        raise ApiError(404, "not_found", f"no top-up {topup_id}")
    return TopUpStatus(
        topup_id=row.id,
        state=row.state,
        method=row.method,
        amount_tyiyn=row.amount_tyiyn,
        amount=format_som(row.amount_tyiyn),
        currency=row.currency,
        invoice_id=row.invoice_id,
        expires_at=row.expires_at,
        paid=row.state == "paid",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
