"""AuthorizationKey rotation: the key a station had before its last rotation stays valid until
`previous_key_expires_at`, so its charger can be reconfigured (ChangeConfiguration
`AuthorizationKey`) while it still logs in with the old one.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 15:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("stations", sa.Column("previous_password_hash", sa.String(256), nullable=True))
    op.add_column(
        "stations",
        sa.Column("previous_key_expires_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("stations", "previous_key_expires_at")
    op.drop_column("stations", "previous_password_hash")
