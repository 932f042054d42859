"""Top-up activities that talk to the payment provider: create, check and cancel invoices.

createInvoice is idempotent twice over: the top-up row remembers the invoice once created, and
the provider keys invoices by our order_id (the top-up id), so a retry after a lost answer gets
the same invoice instead of a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.card_charges import CardChargeActivities
from activities.copy_fields import copy_fields
from activities.topups import TopUpRecords
from db.clients import ensure_client
from db.models import TopUp
from db.payment_audit import write_payment_audit
from domain.contracts.topups import InvoiceInfo, TopUpInput
from payments.provider import (
    Invoice,
    InvoiceRequest,
    PaymentProvider,
    PaymentStatus,
    PayStatus,
    ProviderRejected,
)

log = structlog.get_logger(__name__)

PROVIDER_REJECTED = "ProviderRejected"
TOPUP_CONFLICT = "TopUpConflict"


@dataclass(frozen=True)
class CreateInvoiceInput:
    topup_id: str
    client_id: str
    method: str  # qr | card | h2h
    provider: str
    amount_tyiyn: int
    currency: str
    description: str
    expires_at: datetime

    @classmethod
    def for_topup(cls, topup: TopUpInput, expires_at: datetime) -> CreateInvoiceInput:
        """The invoice a top-up asks for: its own fields, and when the invoice dies."""
        return copy_fields(cls, topup, expires_at=expires_at)


@dataclass(frozen=True)
class PaymentReport:
    """A paid payment as the workflow sees it, from the webhook or from statusPayment."""

    trans_id: str
    amount_tyiyn: int | None
    currency: str | None
    source: str  # webhook | status | sweep
    untrusted: str | None = None  # the webhook's screening said: review, never credit


@dataclass(frozen=True)
class CheckPaymentInput:
    topup_id: str
    invoice_id: str


@dataclass(frozen=True)
class CheckPaymentResult:
    status: int  # PayStatus
    report: PaymentReport | None = None
    # The answer could not be read (see PaymentStatus.unreadable): review, never `expired`.
    unreadable: str | None = None


def _rejected(exc: ProviderRejected) -> ApplicationError:
    return ApplicationError(exc.message, exc.code, type=PROVIDER_REJECTED, non_retryable=True)


def report_from(status: PaymentStatus) -> CheckPaymentResult:
    if status.unreadable is not None:
        return CheckPaymentResult(int(PayStatus.AWAITING), unreadable=status.unreadable)
    if status.status is PayStatus.PAID and status.trans_id:
        report = PaymentReport(status.trans_id, status.amount_tyiyn, status.currency, "status")
        return CheckPaymentResult(int(PayStatus.PAID), report)
    # "Paid" without a transaction id cannot be credited safely; keep waiting for the webhook.
    awaiting = status.status if status.status is not PayStatus.PAID else PayStatus.AWAITING
    return CheckPaymentResult(int(awaiting))


def _info(row: TopUp) -> InvoiceInfo:
    assert row.invoice_id is not None and row.expires_at is not None
    return copy_fields(InvoiceInfo, row, topup_id=row.id)


class PaymentActivities:
    """Provider calls; ProviderError is retried by Temporal, ProviderRejected is final."""

    def __init__(
        self, db_sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
    ) -> None:
        self._db_sessions = db_sessions
        self._provider = provider

    async def _open_topup(self, request: CreateInvoiceInput) -> TopUp:
        async with self._db_sessions() as session, session.begin():
            await ensure_client(session, request.client_id)
            await session.execute(
                insert(TopUp)
                .values(
                    id=request.topup_id,
                    client_id=request.client_id,
                    method=request.method,
                    provider=request.provider,
                    amount_tyiyn=request.amount_tyiyn,
                    currency=request.currency,
                    order_id=request.topup_id,
                    state="creating",
                    expires_at=request.expires_at,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            row = await session.scalar(select(TopUp).where(TopUp.id == request.topup_id))
        assert row is not None
        if (row.client_id, row.amount_tyiyn) != (request.client_id, request.amount_tyiyn):
            raise ApplicationError(
                f"top-up {request.topup_id} exists for another client or amount",
                type=TOPUP_CONFLICT,
                non_retryable=True,
            )
        return row

    @activity.defn(name="create_invoice")
    async def create_invoice(self, request: CreateInvoiceInput) -> InvoiceInfo:
        row = await self._open_topup(request)
        if row.invoice_id is not None:
            return _info(row)
        try:
            invoice = await self._provider.create_invoice(
                copy_fields(InvoiceRequest, request, order_id=request.topup_id)
            )
        except ProviderRejected as exc:
            await self._audit("invoice_rejected", request.topup_id, ok=False, code=exc.code)
            raise _rejected(exc) from exc
        return await self._store_invoice(request, invoice)

    async def _store_invoice(self, request: CreateInvoiceInput, invoice: Invoice) -> InvoiceInfo:
        async with self._db_sessions() as session, session.begin():
            await session.execute(
                update(TopUp)
                .where(TopUp.id == request.topup_id, TopUp.invoice_id.is_(None))
                .values(
                    invoice_id=invoice.invoice_id,
                    qr_image_url=invoice.qr_image_url,
                    qr_url=invoice.qr_url,
                    app_link=invoice.app_link,
                    site_pay=invoice.site_pay,
                    state="awaiting_payment",
                    updated_at=datetime.now(UTC),
                )
            )
            row = await session.scalar(select(TopUp).where(TopUp.id == request.topup_id))
            assert row is not None
            write_payment_audit(
                session,
                "invoice_created",
                request.provider,
                topup_id=request.topup_id,
                details={"invoice_id": row.invoice_id, "amount_tyiyn": request.amount_tyiyn},
            )
        log.info("invoice created", topup_id=request.topup_id, invoice_id=row.invoice_id)
        return _info(row)

    @activity.defn(name="check_payment")
    async def check_payment(self, request: CheckPaymentInput) -> CheckPaymentResult:
        try:
            status = await self._provider.payment_status(request.invoice_id, request.topup_id)
        except ProviderRejected as exc:
            raise _rejected(exc) from exc
        if status.unreadable is not None:
            await self._audit(
                "status_unreadable", request.topup_id, ok=False, reason=status.unreadable
            )
        return report_from(status)

    @activity.defn(name="cancel_invoice")
    async def cancel_invoice(self, request: CheckPaymentInput) -> bool:
        """False when the provider refuses (already paid or cancelled): the status check decides."""
        try:
            await self._provider.cancel_invoice(request.invoice_id)
        except ProviderRejected as exc:
            await self._audit("cancel_refused", request.topup_id, ok=False, code=exc.code)
            return False
        await self._audit("invoice_cancelled", request.topup_id, invoice_id=request.invoice_id)
        return True

    async def _audit(self, event: str, topup_id: str, *, ok: bool = True, **details: Any) -> None:
        async with self._db_sessions() as session, session.begin():
            write_payment_audit(
                session, event, self._provider.name.value, topup_id=topup_id, ok=ok, details=details
            )


def payment_activities(
    db_sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
) -> list[Callable[..., Any]]:
    """The payment activities for worker.py. `credit_topup` comes from LedgerActivities."""
    calls = PaymentActivities(db_sessions, provider)
    records = TopUpRecords(db_sessions)
    return [
        CardChargeActivities(db_sessions, provider).charge_card,
        calls.create_invoice,
        calls.check_payment,
        calls.cancel_invoice,
        records.record_payment,
        records.finish_topup,
        records.find_topup,
        records.stale_topups,
        records.unsettled_payments,
        records.unread_notices,
        records.hold_for_review,
    ]
