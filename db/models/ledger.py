"""Double-entry ledger tables: accounts with balances, entries keyed by op_key, postings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, created_at_column


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        # Client money never goes below zero, whatever the code above does.
        CheckConstraint(
            "kind NOT IN ('available', 'held') OR balance_tyiyn >= 0", name="client_non_negative"
        ),
        CheckConstraint(
            "(kind IN ('available', 'held')) = (client_id IS NOT NULL)", name="client_owner"
        ),
        Index("ix_ledger_accounts_client_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("clients.id"))
    # Running balance of client accounts. System accounts keep 0 here (no hot row to lock);
    # their balance is the sum of their postings (Ledger.system_balance).
    balance_tyiyn: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_tyiyn > 0", name="positive_amount"),
        Index("ix_ledger_entries_client_id_id", "client_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    op_key: Mapped[str] = mapped_column(String(200), unique=True)
    operation: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("clients.id"))
    amount_tyiyn: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount_tyiyn <> 0", name="non_zero"),
        Index("ix_ledger_postings_entry_id", "entry_id"),
        Index("ix_ledger_postings_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_entries.id"))
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_accounts.id"))
    amount_tyiyn: Mapped[int] = mapped_column(BigInteger)
