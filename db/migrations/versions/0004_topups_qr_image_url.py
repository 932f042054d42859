"""Top-ups keep the provider's QR picture URL, so a retried invoice request answers the same.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("topups", sa.Column("qr_image_url", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    op.drop_column("topups", "qr_image_url")
