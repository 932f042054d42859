"""Simulated O!Dengi invoices (PAYMENT_PROVIDER=SIMULATED): the simulator's own store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "simulated_invoices",
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("result_url", sa.String(length=1000), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("trans_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_tyiyn > 0", name=op.f("ck_simulated_invoices_positive_amount")),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_simulated_invoices")),
        sa.UniqueConstraint("order_id", name=op.f("uq_simulated_invoices_order_id")),
    )


def downgrade() -> None:
    op.drop_table("simulated_invoices")
