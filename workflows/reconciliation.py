"""Payments confirmed after their TopUp closed: reconciliation per trans_id and an hourly sweep.

The webhook starts `PaymentReconciliation` (id `reconcile-{trans_id}`) when the top-up's own
workflow is gone; the hourly Schedule runs `ReconcileStaleTopUps`, which asks the provider about
every top-up still open long after its invoice died. Both credit through `settle_payment`, so a
paid invoice is credited exactly once however late and however often it is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from activities.payments import PaymentReport, payment_activities
    from activities.topups import (
        FindTopUpInput,
        RecordPaymentInput,
        StaleTopUpsInput,
        TopUpRecords,
        TopUpRef,
    )
    from payments.provider import PaymentNotice, PaymentProvider, PayStatus
    from workflows.topup import (
        RECORD_RETRY,
        RECORD_TIMEOUT,
        TopUp,
        TopUpState,
        cancel_invoice,
        check_payment,
        finish,
        report_of,
        settle_payment,
    )

SWEEP_SCHEDULE_ID = "payments-reconcile-hourly"
SWEEP_WORKFLOW_ID = "payments-reconcile-sweep"


def reconciliation_workflow_id(trans_id: str) -> str:
    return f"reconcile-{trans_id}"


@dataclass(frozen=True)
class ReconcileInput:
    provider: str
    notice: PaymentNotice


@dataclass(frozen=True)
class ReconcileResult:
    outcome: str  # paid | needs_review | unmatched | ignored
    topup_id: str | None
    reason: str | None = None


@workflow.defn(name="PaymentReconciliation")
class PaymentReconciliation:
    @workflow.run
    async def run(self, request: ReconcileInput) -> ReconcileResult:
        notice = request.notice
        if notice.status is not PayStatus.PAID:
            return ReconcileResult("ignored", None, f"status_pay {int(notice.status)}")
        topup: TopUpRef | None = await workflow.execute_activity_method(
            TopUpRecords.find_topup,
            FindTopUpInput(notice.order_id, notice.invoice_id),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"find top-up of order {notice.order_id}",
        )
        if topup is None:
            # Not ours, or lost locally: keep the payment on record for a human, credit nothing.
            await workflow.execute_activity_method(
                TopUpRecords.record_payment,
                RecordPaymentInput(
                    provider=request.provider,
                    trans_id=notice.trans_id,
                    topup_id=None,
                    invoice_id=notice.invoice_id,
                    amount_tyiyn=notice.amount_tyiyn,
                    currency=notice.currency,
                    claim=False,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary="record unmatched payment",
            )
            return ReconcileResult("unmatched", None, f"no top-up for order {notice.order_id}")
        settlement = await settle_payment(topup, report_of(notice))
        return ReconcileResult(settlement.state.value, topup.topup_id, settlement.reason)


@dataclass(frozen=True)
class SweepInput:
    older_than_s: int = 1800  # well past an invoice's 5-minute life and its workflow's end
    limit: int = 200


@dataclass(frozen=True)
class SweepResult:
    checked: int
    paid: int
    needs_review: int
    expired: int
    unresolved: int


@workflow.defn(name="ReconcileStaleTopUps")
class ReconcileStaleTopUps:
    @workflow.run
    async def run(self, request: SweepInput) -> SweepResult:
        stale: list[TopUpRef] = await workflow.execute_activity_method(
            TopUpRecords.stale_topups,
            StaleTopUpsInput(request.older_than_s, request.limit),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary="list open top-ups",
        )
        counts = {state: 0 for state in TopUpState}
        for topup in stale:
            counts[await self._reconcile(topup)] += 1
        return SweepResult(
            checked=len(stale),
            paid=counts[TopUpState.PAID],
            needs_review=counts[TopUpState.NEEDS_REVIEW],
            expired=counts[TopUpState.EXPIRED] + counts[TopUpState.FAILED],
            unresolved=counts[TopUpState.UNRESOLVED],
        )

    async def _reconcile(self, topup: TopUpRef) -> TopUpState:
        if topup.invoice_id is None:
            # The driver never saw an invoice, so nobody could have paid one.
            await finish(topup, TopUpState.FAILED, reason="no invoice was created")
            return TopUpState.FAILED
        try:
            result = await check_payment(topup.topup_id, topup.invoice_id, final=True)
            if result.report is None and result.status == PayStatus.AWAITING:
                await cancel_invoice(topup.topup_id, topup.invoice_id)
                result = await check_payment(topup.topup_id, topup.invoice_id, final=True)
        except ActivityError:
            return TopUpState.UNRESOLVED  # next hour
        if result.report is not None:
            report: PaymentReport = result.report
            return (await settle_payment(topup, report)).state
        await finish(topup, TopUpState.EXPIRED, reason="reconciliation: invoice not paid")
        return TopUpState.EXPIRED


PAYMENT_WORKFLOWS: Sequence[type] = (TopUp, PaymentReconciliation, ReconcileStaleTopUps)


def payments_worker_parts(
    sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
) -> tuple[list[type], list[Callable[..., Any]]]:
    """Workflows and activities for worker.py. The ledger's `credit_topup` activity, which the
    TopUp workflow also runs, is registered with the other LedgerActivities."""
    return list(PAYMENT_WORKFLOWS), payment_activities(sessions, provider)


async def ensure_schedules(client: Client, task_queue: str) -> None:
    """Create the hourly reconciliation Schedule once; starting a second worker changes nothing."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileStaleTopUps.run,
            SweepInput(),
            id=SWEEP_WORKFLOW_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(SWEEP_SCHEDULE_ID, schedule)
