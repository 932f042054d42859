"""Meter plausibility. Connectors say what they can deliver: current type (AC/DC) and maximum power in W. Meter
readings that need more power than this are not billed (domain/meter_readings.py); NULL
means the conservative default of the type. Sessions keep what the meter check found
(`meter_note`: a review reason, or a rebuilt register reset).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 12:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("charging_sessions", sa.Column("meter_note", sa.String(64), nullable=True))
    op.add_column("connectors", sa.Column("current_type", sa.String(2), nullable=True))
    op.add_column("connectors", sa.Column("max_power_w", sa.BigInteger(), nullable=True))
    op.create_check_constraint(
        op.f("ck_connectors_positive_max_power"),
        "connectors",
        "max_power_w IS NULL OR max_power_w > 0",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_connectors_positive_max_power"), "connectors", type_="check")
    op.drop_column("connectors", "max_power_w")
    op.drop_column("connectors", "current_type")
    op.drop_column("charging_sessions", "meter_note")
