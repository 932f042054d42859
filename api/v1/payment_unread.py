"""The webhook's answer to a signed notice it cannot interpret: keep it, audit it, answer 200
(the provider stops retrying), and have it re-checked with statusPayment: by the top-up's
running workflow, else by a `RecheckUnreadNotice` workflow (id `recheck-{trans_id}`); the
hourly sweep re-checks whatever `unread` row is left."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import structlog
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import DbSession
from api.errors import ApiError
from db.models import TopUp
from db.payment_audit import write_payment_audit
from db.unread_notices import record_unread_notice
from domain.contracts.topups import recheck_workflow_id, topup_workflow_id
from payments.odengi import as_tyiyn
from payments.provider import UnreadNotice
from payments.webhook import raw_body
from workflows.reconciliation import RecheckInput, RecheckUnreadNotice
from workflows.topup import TopUpWorkflow

log = structlog.get_logger(__name__)

# Any increase means the provider says something our reading (ODENGI_STATUS_CODES...) misses:
# run `evpower payments check` and look at provider_transactions.raw_notice.
UNREAD_NOTICES = Counter(
    "evpower_payment_notices_unread_total",
    "Signed payment notices the webhook kept but could not interpret (status `unread`).",
)


async def keep_unread_notice(
    db: DbSession,
    temporal: Client,
    provider: str,
    notice: UnreadNotice,
    fields: Mapping[str, object],
    *,
    task_queue: str,
    budget_s: float,
) -> dict[str, str]:
    raw = raw_body(fields)
    try:
        topup_id = None
        if notice.order_id:
            topup_id = await db.scalar(select(TopUp.id).where(TopUp.order_id == notice.order_id))
        await record_unread_notice(
            db,
            provider=provider,
            trans_id=notice.trans_id,
            topup_id=topup_id,
            invoice_id=notice.invoice_id,
            amount_tyiyn=as_tyiyn(raw.get("amount")),
            currency=str(raw.get("currency", "")).upper(),
            raw=raw,
            reason=notice.reason,
        )
        write_payment_audit(
            db,
            "webhook_unreadable",
            provider,
            ok=False,
            topup_id=topup_id,
            trans_id=notice.trans_id,
            details={"reason": notice.reason, "notice": raw},
        )
        await db.commit()
    except (SQLAlchemyError, OSError) as exc:
        log.error("unread notice not recorded", trans_id=notice.trans_id, error=type(exc).__name__)
        raise ApiError(503, "unavailable", "notice not recorded; please retry") from None
    UNREAD_NOTICES.inc()
    log.warning("webhook unreadable", trans_id=notice.trans_id, reason=notice.reason)
    try:
        async with asyncio.timeout(budget_s):
            await route_unread(temporal, task_queue, provider, notice, topup_id)
    except (RPCError, TimeoutError) as exc:
        # Recorded: the sweep re-checks `unread` rows whatever happens here.
        log.warning("unread notice not routed", trans_id=notice.trans_id, error=type(exc).__name__)
    return {"status": "ok", "routed": "review"}


async def route_unread(
    temporal: Client, task_queue: str, provider: str, notice: UnreadNotice, topup_id: str | None
) -> None:
    """The top-up's running workflow re-checks it; without one, a RecheckUnreadNotice does."""
    if topup_id is not None:
        try:
            handle = temporal.get_workflow_handle_for(
                TopUpWorkflow.run, topup_workflow_id(topup_id)
            )
            await handle.signal(TopUpWorkflow.payment_unreadable, notice)
            return
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await temporal.start_workflow(
            RecheckUnreadNotice.run,
            RecheckInput(provider=provider, topup_id=topup_id, notice=notice),
            id=recheck_workflow_id(notice.trans_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=f"unread notice {notice.trans_id} for order {notice.order_id or '?'}",
        )
