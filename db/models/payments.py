"""Top-ups, the provider's transactions (credited at most once), and the payment audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column


class TopUp(Base):
    __tablename__ = "topups"
    __table_args__ = (
        CheckConstraint("amount_tyiyn > 0", name="positive_amount"),
        Index("ix_topups_client_id_created_at", "client_id", "created_at"),
        Index("ix_topups_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("clients.id"))
    method: Mapped[str] = mapped_column(String(16))  # qr | card | h2h
    provider: Mapped[str] = mapped_column(String(16))
    amount_tyiyn: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="KGS")
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    invoice_id: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(32))
    qr_url: Mapped[str | None] = mapped_column(String(1000))
    qr_image_url: Mapped[str | None] = mapped_column(String(1000))
    app_link: Mapped[str | None] = mapped_column(String(1000))
    site_pay: Mapped[str | None] = mapped_column(String(1000))
    trans_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the hourly reconciliation last asked the provider: it takes the least recently
    # checked first, so top-ups the provider never resolves cannot starve newer ones.
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class ProviderTransaction(Base):
    """A payment the provider reported; `credited_entry_id` is set once, by the ledger credit.

    status: `received` (the webhook's durable receipt, not settled yet), `paid` (claimed by its
    top-up), `review` (a human decides; never credited automatically), `unread` (a signed
    notice we could not interpret, kept with `raw_notice`: credited only when statusPayment
    confirms it, otherwise moved to review by its top-up's workflow or the sweep)."""

    __tablename__ = "provider_transactions"
    __table_args__ = (
        # The hourly sweep's question: which reported payments are neither credited nor in review.
        Index(
            "ix_provider_transactions_unsettled",
            "created_at",
            postgresql_where=text(
                "credited_entry_id IS NULL AND status NOT IN ('review', 'unread')"
            ),
        ),
        Index(
            "ix_provider_transactions_unread",
            "updated_at",
            postgresql_where=text("status = 'unread'"),
        ),
    )

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    trans_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    topup_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("topups.id"))
    invoice_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    amount_tyiyn: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credited_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_entries.id")
    )
    raw_notice: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    review_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class PaymentAudit(Base):
    """Every payment event, with card data, tokens and hashes masked before they get here."""

    __tablename__ = "payment_audit"
    __table_args__ = (Index("ix_payment_audit_topup_id", "topup_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    topup_id: Mapped[str | None] = mapped_column(String(64))
    trans_id: Mapped[str | None] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SimulatedInvoice(Base):
    """An invoice of the simulated O!Dengi (PAYMENT_PROVIDER=SIMULATED only); order_id is unique,
    as the provider's, so a retried createInvoice returns the same invoice."""

    __tablename__ = "simulated_invoices"
    __table_args__ = (CheckConstraint("amount_tyiyn > 0", name="positive_amount"),)

    invoice_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_tyiyn: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(500))
    result_url: Mapped[str] = mapped_column(String(1000))
    test: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[int] = mapped_column(Integer)  # status_pay: 1 awaiting, 2 cancelled, 3 paid
    trans_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class CardCharge(Base):
    """A card sealed by the API for one host-to-host request (payments/card_vault.py); the
    charge activity deletes it as it reads it, so it is charged at most once."""

    __tablename__ = "card_charges"

    topup_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
