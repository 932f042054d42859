"""Card charges waiting for the TopUp workflow: a sealed card per host-to-host request, read
(and deleted) once by the charge activity. The API writes it as the owner role; client
requests are granted nothing on it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 12:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_charges",
        sa.Column("topup_id", sa.String(64), primary_key=True),
        sa.Column("ref", sa.String(32), primary_key=True),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_table("card_charges")
