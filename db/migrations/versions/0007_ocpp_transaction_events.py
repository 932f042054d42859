"""OCPP transaction events: charger messages written before the charger is answered and
relayed to their session workflows until Temporal accepts them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ocpp_transaction_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("answered", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "due_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpp_transaction_events")),
        sa.UniqueConstraint("transaction_id", "kind", name="uq_ocpp_transaction_events_tx_kind"),
    )
    op.create_index(
        "ix_ocpp_transaction_events_due_at", "ocpp_transaction_events", ["due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ocpp_transaction_events_due_at", table_name="ocpp_transaction_events")
    op.drop_table("ocpp_transaction_events")
