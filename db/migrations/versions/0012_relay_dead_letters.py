"""Dead letters of the relay: an `ocpp_transaction_events` row whose delivery failed for good
(`failures` counts its permanent failures) is marked `dead_at` with its `last_error`, kept
for an operator, no longer claimed nor holding back its transaction's later events.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 14:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ocpp_transaction_events",
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "ocpp_transaction_events",
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("ocpp_transaction_events", "dead_at")
    op.drop_column("ocpp_transaction_events", "failures")
