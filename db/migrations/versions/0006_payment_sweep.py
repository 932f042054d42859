"""Payment sweep: top-ups remember when reconciliation last checked them; unsettled provider
transactions (the webhook's `received` receipts) are indexed for the hourly sweep.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("topups", sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_provider_transactions_unsettled",
        "provider_transactions",
        ["created_at"],
        postgresql_where=sa.text("credited_entry_id IS NULL AND status <> 'review'"),
    )


def downgrade() -> None:
    op.drop_index("ix_provider_transactions_unsettled", table_name="provider_transactions")
    op.drop_column("topups", "checked_at")
