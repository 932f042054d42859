"""Payments confirmed after their TopUp closed: reconciliation per trans_id and an hourly sweep.

The webhook starts `PaymentReconciliation` (id `reconcile-{trans_id}`) when the top-up's own
workflow is gone; the hourly Schedule (see runtime/schedules.py) runs `ReconcileStaleTopUps`,
which settles every payment the webhook recorded but nobody settled (Temporal was down, say)
asks statusPayment about signed notices nobody could read (`unread`: settled if the provider
confirms a payment, else handed to review) and asks the provider about top-ups still open long
after their invoice died. All of them
credit through `settle_payment`, so a paid invoice is credited exactly once however late and
however often it is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentReport
    from activities.topups import (
        FindTopUpInput,
        RecordPaymentInput,
        StaleTopUpsInput,
        TopUpRecords,
        TopUpRef,
        UnreadPayment,
        UnsettledPayment,
    )
    from domain.contracts.topups import TopUpState
    from payments.provider import PaymentNotice, PayStatus, UnreadNotice
    from workflows.database_steps import database_method
    from workflows.topup import (
        CANCEL_REFUSED_REASON,
        TopUpWorkflow,
        cancel_invoice,
        check_payment,
        finish,
        hold_for_review,
        refused_yet_awaiting,
        report_of,
        settle_payment,
    )


@dataclass(frozen=True)
class ReconcileInput:
    provider: str
    notice: PaymentNotice


@dataclass(frozen=True)
class ReconcileResult:
    outcome: str  # paid | needs_review | unmatched | ignored
    topup_id: str | None
    reason: str | None = None


async def find_topup(order_id: str, invoice_id: str | None) -> TopUpRef | None:
    topup: TopUpRef | None = await database_method(
        TopUpRecords.find_topup,
        FindTopUpInput(order_id, invoice_id),
        f"find top-up of order {order_id or invoice_id}",
    )
    return topup


async def record_unmatched(provider: str, report: PaymentReport, invoice_id: str | None) -> None:
    """Not ours, or lost locally: keep the payment on record for a human, credit nothing."""
    await database_method(
        TopUpRecords.record_payment,
        RecordPaymentInput(
            provider=provider,
            trans_id=report.trans_id,
            topup_id=None,
            invoice_id=invoice_id,
            amount_tyiyn=report.amount_tyiyn or 0,
            currency=report.currency or "",
            claim=False,
            reason="no top-up for this payment",
        ),
        "record unmatched payment",
    )


async def recheck_unread(notice: UnreadPayment) -> TopUpState:
    """statusPayment decides: a payment it confirms is settled as any other; the notice
    itself goes to review unless that settlement was its own trans_id."""
    state = TopUpState.NEEDS_REVIEW
    try:
        topup = None
        if notice.topup_id or notice.invoice_id:
            topup = await find_topup(notice.topup_id or "", notice.invoice_id)
        if topup is not None and topup.invoice_id is not None:
            result = await check_payment(topup.topup_id, topup.invoice_id, final=False)
            if result.report is not None:
                settled = await settle_payment(topup, result.report)
                if result.report.trans_id == notice.trans_id:
                    state = settled.state  # the notice was this payment
    except ActivityError:
        return TopUpState.UNRESOLVED  # still `unread`: next hour
    await hold_for_review(notice.provider, [notice.trans_id], notice.topup_id, notice.reason)
    return state


@workflow.defn(name="PaymentReconciliation")
class PaymentReconciliation:
    @workflow.run
    async def run(self, request: ReconcileInput) -> ReconcileResult:
        notice = request.notice
        if notice.status is not PayStatus.PAID:
            return ReconcileResult("ignored", None, f"status_pay {int(notice.status)}")
        topup = await find_topup(notice.order_id, notice.invoice_id)
        if topup is None:
            await record_unmatched(request.provider, report_of(notice), notice.invoice_id)
            return ReconcileResult("unmatched", None, f"no top-up for order {notice.order_id}")
        settlement = await settle_payment(topup, report_of(notice))
        return ReconcileResult(settlement.state.value, topup.topup_id, settlement.reason)


@dataclass(frozen=True)
class SweepInput:
    older_than_s: int = 1800  # well past an invoice's 5-minute life and its workflow's end
    limit: int = 200  # per hour, of each kind; the least recently checked come first


@dataclass(frozen=True)
class SweepResult:
    checked: int  # open top-ups asked about
    paid: int
    needs_review: int
    expired: int
    unresolved: int
    receipts: int = 0  # recorded payments that nobody had settled
    unread: int = 0  # signed notices nobody could read, re-checked with statusPayment


@workflow.defn(name="ReconcileStaleTopUps")
class ReconcileStaleTopUps:
    @workflow.run
    async def run(self, request: SweepInput) -> SweepResult:
        page = StaleTopUpsInput(request.older_than_s, request.limit)
        receipts: list[UnsettledPayment] = await database_method(
            TopUpRecords.unsettled_payments,
            page,
            "list unsettled payments",
        )
        counts = {state: 0 for state in TopUpState}
        for receipt in receipts:
            counts[await self._settle_receipt(receipt)] += 1
        unread: list[UnreadPayment] = []
        if workflow.patched("sweep-unread-notices"):
            unread = await database_method(
                TopUpRecords.unread_notices,
                page,
                "list unread notices",
            )
        for notice in unread:
            counts[await recheck_unread(notice)] += 1
        stale: list[TopUpRef] = await database_method(
            TopUpRecords.stale_topups,
            page,
            "list open top-ups",
        )
        for topup in stale:
            counts[await self._reconcile(topup)] += 1
        return SweepResult(
            checked=len(stale),
            paid=counts[TopUpState.PAID],
            needs_review=counts[TopUpState.NEEDS_REVIEW],
            expired=counts[TopUpState.EXPIRED] + counts[TopUpState.FAILED],
            unresolved=counts[TopUpState.UNRESOLVED],
            receipts=len(receipts),
            unread=len(unread),
        )

    async def _settle_receipt(self, receipt: UnsettledPayment) -> TopUpState:
        report = PaymentReport(receipt.trans_id, receipt.amount_tyiyn, receipt.currency, "sweep")
        try:
            topup = await find_topup(receipt.topup_id or "", receipt.invoice_id)
            if topup is None:
                await record_unmatched(receipt.provider, report, receipt.invoice_id)
                return TopUpState.NEEDS_REVIEW
            return (await settle_payment(topup, report)).state
        except ActivityError:
            return TopUpState.UNRESOLVED  # e.g. the ledger refused: next hour, and the logs

    async def _reconcile(self, topup: TopUpRef) -> TopUpState:
        if topup.invoice_id is None:
            # The driver never saw an invoice, so nobody could have paid one.
            await finish(topup, TopUpState.FAILED, reason="no invoice was created")
            return TopUpState.FAILED
        try:
            # A short check: a provider that does not answer is asked again next hour, and
            # must not hold up the other top-ups of this run.
            result = await check_payment(topup.topup_id, topup.invoice_id, final=False)
            awaiting = result.unreadable is None and result.status == PayStatus.AWAITING
            if result.report is None and awaiting:
                cancelled = await cancel_invoice(topup.topup_id, topup.invoice_id)
                result = await check_payment(topup.topup_id, topup.invoice_id, final=False)
                if refused_yet_awaiting(cancelled, result):
                    reason = f"reconciliation: {CANCEL_REFUSED_REASON}"
                    await finish(topup, TopUpState.NEEDS_REVIEW, reason=reason)
                    return TopUpState.NEEDS_REVIEW
            if result.report is not None:
                return (await settle_payment(topup, result.report)).state
        except ActivityError:
            return TopUpState.UNRESOLVED  # next hour
        if result.unreadable is not None:
            # An answer we cannot read may hide a payment: review, never `expired`.
            reason = f"reconciliation: {result.unreadable}"
            await finish(topup, TopUpState.NEEDS_REVIEW, reason=reason)
            return TopUpState.NEEDS_REVIEW
        await finish(topup, TopUpState.EXPIRED, reason="reconciliation: invoice not paid")
        return TopUpState.EXPIRED


@dataclass(frozen=True)
class RecheckInput:
    provider: str
    topup_id: str | None  # the top-up of the notice's order_id, when it is ours
    notice: UnreadNotice


@workflow.defn(name="RecheckUnreadNotice")
class RecheckUnreadNotice:
    """An unread notice whose top-up has no running workflow (it closed, or the order is not
    ours): statusPayment now rather than at the next hourly sweep; the notice ends in review
    unless statusPayment confirms it as the payment."""

    @workflow.run
    async def run(self, request: RecheckInput) -> str:
        notice = request.notice
        unread = UnreadPayment(
            request.provider, notice.trans_id, request.topup_id, notice.invoice_id, notice.reason
        )
        return (await recheck_unread(unread)).value


PAYMENT_WORKFLOWS: Sequence[type] = (
    TopUpWorkflow,
    PaymentReconciliation,
    ReconcileStaleTopUps,
    RecheckUnreadNotice,
)
