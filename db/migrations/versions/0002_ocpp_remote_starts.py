"""OCPP remote starts: the energy limit a RemoteStartTransaction carried, per idTag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ocpp_remote_starts",
        sa.Column("id_tag", sa.String(length=20), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("energy_limit_wh", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "energy_limit_wh >= 0", name=op.f("ck_ocpp_remote_starts_non_negative_limit")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_ocpp_remote_starts_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_tag", name=op.f("pk_ocpp_remote_starts")),
    )


def downgrade() -> None:
    op.drop_table("ocpp_remote_starts")
