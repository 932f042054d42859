"""Signed notices we cannot read: provider_transactions keeps the raw body and why it is in
review; `unread` rows (re-checked with statusPayment by the sweep) get their own index, and the
unsettled-receipts index leaves them out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 11:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("provider_transactions", sa.Column("raw_notice", JSONB(), nullable=True))
    op.add_column(
        "provider_transactions", sa.Column("review_reason", sa.String(300), nullable=True)
    )
    op.drop_index("ix_provider_transactions_unsettled", table_name="provider_transactions")
    op.create_index(
        "ix_provider_transactions_unsettled",
        "provider_transactions",
        ["created_at"],
        postgresql_where=sa.text(
            "credited_entry_id IS NULL AND status NOT IN ('review', 'unread')"
        ),
    )
    op.create_index(
        "ix_provider_transactions_unread",
        "provider_transactions",
        ["updated_at"],
        postgresql_where=sa.text("status = 'unread'"),
    )


def downgrade() -> None:
    op.drop_index("ix_provider_transactions_unread", table_name="provider_transactions")
    op.drop_index("ix_provider_transactions_unsettled", table_name="provider_transactions")
    op.create_index(
        "ix_provider_transactions_unsettled",
        "provider_transactions",
        ["created_at"],
        postgresql_where=sa.text("credited_entry_id IS NULL AND status <> 'review'"),
    )
    op.drop_column("provider_transactions", "review_reason")
    op.drop_column("provider_transactions", "raw_notice")
