"""The TopUp workflow (id `topup-{topup_id}`): invoice, wait for payment, credit once or expire.

createInvoice (5-minute life) -> wait for the `payment_notified` signal (the webhook is the main
path) while polling statusPayment every 60 s -> paid with the right amount: `credit_topup`
(op_key `topup:{trans_id}`) -> `paid`. No payment in time: invoiceCancel, one last
statusPayment (a payment can race the cancel), then `expired`. A wrong amount or currency, or a
notice the webhook did not trust: `needs_review`, nothing credited. A signed notice the webhook
could not interpret (`payment_unreadable`) makes it ask statusPayment at once; if no readable
payment settles the top-up by the end, it ends `needs_review` (never `expired`), as it does when
the last statusPayment answer cannot be read, and the unread notices go to review. Before it
returns, the workflow settles every payment notice it received, so a second payment or one that
arrives while it is finishing is credited or sent to review, never dropped. Deterministic: every
effect is an activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.card_charges import CHARGE_CARD, ChargeCardInput
    from activities.ledger import LedgerActivities, LedgerMovement
    from activities.payments import (
        PROVIDER_REJECTED,
        CheckPaymentInput,
        CheckPaymentResult,
        CreateInvoiceInput,
        PaymentActivities,
        PaymentReport,
    )
    from activities.topups import (
        FinishTopUpInput,
        HoldForReviewInput,
        RecordPaymentInput,
        TopUpRecords,
        TopUpRef,
    )
    from domain.contracts.topups import (
        CARD_UPDATE,
        INVOICE_UPDATE,
        PAYMENT_NOTIFIED,
        PAYMENT_UNREADABLE,
        STATE_QUERY,
        CardCharge,
        CardOutcome,
        InvoiceInfo,
        TopUpInput,
        TopUpState,
        TopUpView,
    )
    from payments.provider import PaymentNotice, PayStatus, UnreadNotice
    from workflows.database_steps import database_method

# Provider calls: retried with backoff while the provider times out or answers 5xx.
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    non_retryable_error_types=[PROVIDER_REJECTED],
)
# A failed poll just waits for the next one.
POLL_RETRY = RetryPolicy(maximum_attempts=2, non_retryable_error_types=[PROVIDER_REJECTED])


async def check_payment(topup_id: str, invoice_id: str, *, final: bool) -> CheckPaymentResult:
    return await workflow.execute_activity_method(
        PaymentActivities.check_payment,
        CheckPaymentInput(topup_id, invoice_id),
        start_to_close_timeout=timedelta(seconds=15),
        schedule_to_close_timeout=timedelta(minutes=10 if final else 1),
        retry_policy=PROVIDER_RETRY if final else POLL_RETRY,
        summary="statusPayment (last check)" if final else "statusPayment",
    )


CANCEL_REFUSED_PATCH = "cancel-refused-review"
CANCEL_REFUSED_REASON = (
    "invoiceCancel was refused but statusPayment still reads the invoice as awaiting: it may be "
    "paid under a status code we read wrongly (see ODENGI_STATUS_CODES)"
)


def refused_yet_awaiting(cancelled: bool | None, result: CheckPaymentResult) -> bool:
    """The provider would not cancel, yet says nobody paid: one of the two answers is misread.
    Only a refusal counts (None is a cancel that failed), and a dead invoice is no contradiction.
    """
    return (
        cancelled is False
        and result.report is None
        and result.unreadable is None
        and result.status == PayStatus.AWAITING
        and workflow.patched(CANCEL_REFUSED_PATCH)
    )


async def cancel_invoice(topup_id: str, invoice_id: str) -> bool | None:
    """True: cancelled; False: the provider refused (paid, or already dead); None: no answer."""
    try:
        cancelled: bool = await workflow.execute_activity_method(
            PaymentActivities.cancel_invoice,
            CheckPaymentInput(topup_id, invoice_id),
            start_to_close_timeout=timedelta(seconds=15),
            schedule_to_close_timeout=timedelta(minutes=2),
            retry_policy=PROVIDER_RETRY,
            summary="invoiceCancel",
        )
    except ActivityError:
        # An invoice we could not cancel is still checked below; a payment on it gets credited.
        workflow.logger.warning("invoiceCancel failed", extra={"topup_id": topup_id})
        return None
    return cancelled


async def finish(
    topup: TopUpRef,
    state: TopUpState,
    *,
    trans_id: str | None = None,
    entry_id: int | None = None,
    reason: str | None = None,
) -> None:
    await database_method(
        TopUpRecords.finish_topup,
        FinishTopUpInput(topup.topup_id, topup.provider, state.value, trans_id, entry_id, reason),
        f"top-up {state.value}",
    )


async def hold_for_review(
    provider: str, trans_ids: list[str], topup_id: str | None, reason: str
) -> None:
    """Unread notices that no readable payment settled: a human decides."""
    await database_method(
        TopUpRecords.hold_for_review,
        HoldForReviewInput(provider, trans_ids, topup_id, reason),
        "unread notice to review",
    )


@dataclass(frozen=True)
class Settlement:
    state: TopUpState
    trans_id: str
    reason: str | None = None
    paid_by: str | None = None  # another transaction that paid the top-up (it stays paid)


async def settle_payment(topup: TopUpRef, report: PaymentReport) -> Settlement:
    """Credit a paid payment exactly once, or send it to review. Shared by every payment path."""
    # statusPayment may leave out the currency: the payment is then in the invoice's own.
    currency = report.currency or topup.currency
    matches = report.amount_tyiyn == topup.amount_tyiyn and currency == topup.currency
    expected = f"{topup.amount_tyiyn} {topup.currency}"
    mismatch = None if matches else f"paid {report.amount_tyiyn} {currency}, expected {expected}"
    refusal = report.untrusted or mismatch
    recorded = await database_method(
        TopUpRecords.record_payment,
        RecordPaymentInput(
            provider=topup.provider,
            trans_id=report.trans_id,
            topup_id=topup.topup_id,
            invoice_id=topup.invoice_id,
            amount_tyiyn=report.amount_tyiyn or 0,
            currency=currency,
            claim=refusal is None,
            reason=refusal,
        ),
        f"record payment {report.trans_id}",
    )
    if not recorded.claimed:
        if recorded.paid_by is not None:
            # Another transaction paid this top-up: it stays paid, and this payment waits in
            # review (provider_transactions, audited) for a human to credit or refund it.
            reason = refusal or f"top-up already paid by transaction {recorded.paid_by}"
            return Settlement(TopUpState.NEEDS_REVIEW, report.trans_id, reason, recorded.paid_by)
        reason = refusal or "the transaction is in review"
        await finish(topup, TopUpState.NEEDS_REVIEW, trans_id=report.trans_id, reason=reason)
        return Settlement(TopUpState.NEEDS_REVIEW, report.trans_id, reason)
    credit = await database_method(
        LedgerActivities.credit_topup,
        LedgerMovement(
            op_key=f"topup:{report.trans_id}",
            client_id=topup.client_id,
            amount_tyiyn=topup.amount_tyiyn,
            reference=topup.topup_id,
            provider=topup.provider,
        ),
        f"credit {topup.amount_tyiyn} tyiyn",
    )
    await finish(topup, TopUpState.PAID, trans_id=report.trans_id, entry_id=credit.entry_id)
    return Settlement(TopUpState.PAID, report.trans_id)


def report_of(notice: PaymentNotice) -> PaymentReport:
    return PaymentReport(
        notice.trans_id, notice.amount_tyiyn, notice.currency, "webhook", notice.untrusted
    )


@workflow.defn(name="TopUp")
class TopUpWorkflow:
    def __init__(self) -> None:
        self._input: TopUpInput | None = None
        self._state = TopUpState.CREATING
        self._invoice: InvoiceInfo | None = None
        self._notices: list[PaymentNotice] = []
        self._seen: set[str] = set()  # trans_ids signalled
        self._settled: set[str] = set()  # trans_ids credited or sent to review here
        self._trans_id: str | None = None
        self._reason: str | None = None
        self._unread: dict[str, UnreadNotice] = {}  # signed notices we could not interpret
        self._held: set[str] = set()  # unread trans_ids handed to review
        self._recheck = False  # an unread notice came in: ask statusPayment now
        self._unreadable: str | None = None  # a statusPayment answer we could not read
        self._card_charging = False
        self._card: CardOutcome | None = None

    @workflow.run
    async def run(self, request: TopUpInput) -> TopUpView:
        self._input = request
        expires_at = workflow.now() + timedelta(seconds=request.life_s)
        try:
            self._invoice = await workflow.execute_activity_method(
                PaymentActivities.create_invoice,
                CreateInvoiceInput.for_topup(request, expires_at),
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=PROVIDER_RETRY,
                summary="createInvoice",
            )
        except ActivityError as exc:
            self._reason = f"the payment provider did not create the invoice: {exc.cause or exc}"
            self._state = TopUpState.FAILED
            await finish(self._ref(), TopUpState.FAILED, reason=self._reason)
            return await self._close()
        self._state = TopUpState.AWAITING_PAYMENT
        report = await self._wait_for_payment(self._invoice.expires_at)
        if report is None:
            report = await self._expire()
        if report is not None:
            await self._settle(report)
        return await self._close()

    def _pending(self) -> list[PaymentNotice]:
        return [notice for notice in self._notices if notice.trans_id not in self._settled]

    async def _wait_for_payment(self, expires_at: datetime) -> PaymentReport | None:
        assert self._input is not None and self._invoice is not None
        poll = timedelta(seconds=self._input.poll_interval_s)
        while (remaining := expires_at - workflow.now()) > timedelta(0):
            wait = min(poll, remaining)
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending()) or self._recheck,
                    timeout=wait,
                    timeout_summary="waiting for the payment webhook",
                )
            except TimeoutError:
                if wait >= remaining:
                    return None  # the invoice's life is over; _expire makes the last check
            else:
                if self._pending():
                    return report_of(self._pending()[0])
                self._recheck = False  # an unread notice: what does the provider say now?
            try:
                result = await check_payment(
                    self._input.topup_id, self._invoice.invoice_id, final=False
                )
            except ActivityError:
                continue
            if result.report is not None:
                return result.report
            if result.unreadable is not None:
                self._unreadable = result.unreadable  # whatever comes later, a human looks
            elif result.status == PayStatus.CANCELLED:
                return None
        return None

    async def _expire(self) -> PaymentReport | None:
        """Cancel, then ask once more: a payment may have raced the cancel."""
        assert self._input is not None and self._invoice is not None
        cancelled = await cancel_invoice(self._input.topup_id, self._invoice.invoice_id)
        try:
            result = await check_payment(self._input.topup_id, self._invoice.invoice_id, final=True)
        except ActivityError:
            if self._pending():
                return report_of(self._pending()[0])
            # Leave the record open: the hourly reconciliation asks the provider again later.
            self._state = TopUpState.UNRESOLVED
            self._reason = "the provider did not answer the last statusPayment"
            return None
        if result.report is not None:
            return result.report
        if self._pending():
            return report_of(self._pending()[0])
        answer = result.unreadable or self._unreadable
        if refused_yet_awaiting(cancelled, result):
            answer = CANCEL_REFUSED_REASON
        if answer is not None or self._unread:
            # Something signed, or the provider's own answer, said more than we can read:
            # a human decides; `expired` could hide a payment.
            self._state = TopUpState.NEEDS_REVIEW
            self._reason = self._unread_reason(answer)
            await finish(self._ref(), TopUpState.NEEDS_REVIEW, reason=self._reason)
            return None
        self._state = TopUpState.EXPIRED
        await finish(self._ref(), TopUpState.EXPIRED, reason="not paid within the invoice life")
        return None

    async def _settle(self, report: PaymentReport) -> None:
        self._settled.add(report.trans_id)
        settlement = await settle_payment(self._ref(), report)
        if settlement.state is TopUpState.PAID:
            self._state, self._trans_id, self._reason = TopUpState.PAID, report.trans_id, None
        elif settlement.paid_by is not None:
            # An extra payment on a paid top-up: the top-up stays paid, the payment is in review.
            self._state, self._trans_id = TopUpState.PAID, settlement.paid_by
            self._reason = f"transaction {report.trans_id} in review: {settlement.reason}"
        else:
            self._state, self._trans_id = TopUpState.NEEDS_REVIEW, report.trans_id
            self._reason = settlement.reason

    def _unread_reason(self, answer: str | None) -> str:
        parts = [f"notice {key}: {notice.reason}" for key, notice in self._unread.items()]
        if answer is not None:
            parts.append(answer)
        return ("unreadable: " + "; ".join(parts))[:300]

    async def _close(self) -> TopUpView:
        """Settle every payment notice received so far, then end. A signal that lands while
        the workflow completes makes Temporal reject the completion and deliver it here, so
        no accepted notice is ever left unhandled."""
        while True:
            # Let the `invoice` update answer (or fail) before the workflow closes.
            await workflow.wait_condition(workflow.all_handlers_finished)
            pending = self._pending()
            unheld = [key for key in self._unread if key not in self._held]
            if not pending and not unheld:
                return self.state()
            for notice in pending:
                await self._settle(report_of(notice))
            if unheld:
                # Rows statusPayment turned into the payment stay paid; the rest go to review.
                self._held.update(unheld)
                assert self._input is not None
                await hold_for_review(
                    self._input.provider,
                    unheld,
                    self._input.topup_id,
                    self._unread_reason(None),
                )

    def _ref(self) -> TopUpRef:
        assert self._input is not None
        return TopUpRef(
            topup_id=self._input.topup_id,
            client_id=self._input.client_id,
            amount_tyiyn=self._input.amount_tyiyn,
            currency=self._input.currency,
            provider=self._input.provider,
            state=self._state.value,
            invoice_id=self._invoice.invoice_id if self._invoice else None,
        )

    @workflow.signal(name=PAYMENT_NOTIFIED)
    def payment_notified(self, notice: PaymentNotice) -> None:
        # The provider retries its webhook: the same trans_id twice is one payment.
        if notice.status is PayStatus.PAID and notice.trans_id not in self._seen:
            self._seen.add(notice.trans_id)
            self._notices.append(notice)

    @workflow.signal(name=PAYMENT_UNREADABLE)
    def payment_unreadable(self, notice: UnreadNotice) -> None:
        """A signed notice the webhook kept but could not interpret (provider_transactions,
        status `unread`): re-check with statusPayment now, and never end `expired` after it."""
        if notice.trans_id not in self._unread:
            self._unread[notice.trans_id] = notice
            self._recheck = True

    @workflow.update(name=INVOICE_UPDATE)
    async def invoice(self) -> InvoiceInfo:
        """Answers once the invoice exists; the start endpoints wait on it."""
        await workflow.wait_condition(
            lambda: self._invoice is not None or self._state is TopUpState.FAILED
        )
        if self._invoice is None:
            raise ApplicationError(self._reason or "invoice not created", type="InvoiceNotCreated")
        return self._invoice

    @workflow.update(name=CARD_UPDATE)
    async def pay_card(self, charge: CardCharge) -> CardOutcome:
        """Charge the card once the invoice exists. However many requests (the API starts
        this update with the workflow, keyed by the Idempotency-Key) arrive, one charge
        activity runs and every caller gets its outcome."""
        await workflow.wait_condition(
            lambda: self._invoice is not None or self._state is TopUpState.FAILED
        )
        if self._invoice is None:
            raise ApplicationError(self._reason or "invoice not created", type="InvoiceNotCreated")
        if not self._card_charging:
            self._card_charging = True
            try:
                self._card = await workflow.execute_activity(
                    CHARGE_CARD,
                    ChargeCardInput(
                        self._invoice.topup_id, self._invoice.invoice_id, charge.ref, charge.key
                    ),
                    result_type=CardOutcome,
                    start_to_close_timeout=timedelta(seconds=30),
                    # Only the read-and-delete of the card can fail before the provider call;
                    # after it a retry finds no card and forwards nothing.
                    retry_policy=RetryPolicy(maximum_attempts=5),
                    summary="h2hPayment",
                )
            except ActivityError as exc:
                self._card = CardOutcome("unknown", f"the card charge failed: {exc.cause or exc}")
        await workflow.wait_condition(lambda: self._card is not None)
        assert self._card is not None
        return self._card

    @workflow.query(name=STATE_QUERY)
    def state(self) -> TopUpView:
        request = self._input
        return TopUpView(
            topup_id=request.topup_id if request else "",
            client_id=request.client_id if request else "",
            state=self._state.value,
            amount_tyiyn=request.amount_tyiyn if request else 0,
            currency=request.currency if request else "",
            method=request.method if request else "",
            invoice=self._invoice,
            trans_id=self._trans_id,
            reason=self._reason,
        )
