"""The energy a session's reservation buys is stored with the session (written by the workflow
at admission) instead of being recomputed by every reader. Existing rows get the same rule,
floor(reserved x 1000 / price), that admission applies.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 17:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "charging_sessions",
        sa.Column("energy_limit_wh", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE charging_sessions SET energy_limit_wh = reserved_tyiyn * 1000 / price_tyiyn_per_kwh"
        " WHERE price_tyiyn_per_kwh > 0"
    )


def downgrade() -> None:
    op.drop_column("charging_sessions", "energy_limit_wh")
