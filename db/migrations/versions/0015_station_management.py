"""Station management by operators: a location can be disabled (hidden from drivers), and a
connector can carry its own price per kWh, overriding its station's (NULL: the station's).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "locations",
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("connectors", sa.Column("price_tyiyn_per_kwh", sa.BigInteger(), nullable=True))
    op.create_check_constraint(
        op.f("ck_connectors_positive_price"),
        "connectors",
        "price_tyiyn_per_kwh IS NULL OR price_tyiyn_per_kwh > 0",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_connectors_positive_price"), "connectors", type_="check")
    op.drop_column("connectors", "price_tyiyn_per_kwh")
    op.drop_column("locations", "enabled")
