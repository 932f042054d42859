"""`review_resolutions`: how an admin resolved a session or top-up that was in `needs_review`
(decision, amount, the ledger entry when money moved, who and why). One row per item; the item's
own row moves to `reviewed`.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_resolutions",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("amount_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("op_key", sa.String(200), nullable=True),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column(
            "resolved_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_tyiyn >= 0", name=op.f("ck_review_resolutions_amount")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_review_resolutions_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("kind", "item_id", name=op.f("pk_review_resolutions")),
    )


def downgrade() -> None:
    op.drop_table("review_resolutions")
