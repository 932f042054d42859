"""Card-started sessions: `charging_sessions.card_id` names the RFID card a session was started
with at the charger (NULL for sessions started from the app), and a partial unique index lets a
card be in at most one live session, so two chargers presenting the same card at once get one
session between them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "state IN ('pending', 'starting', 'charging', 'stopping')"


def upgrade() -> None:
    op.add_column(
        "charging_sessions",
        sa.Column(
            "card_id",
            sa.BigInteger(),
            sa.ForeignKey("rfid_cards.id", name=op.f("fk_charging_sessions_card_id_rfid_cards")),
            nullable=True,
        ),
    )
    op.create_index(
        "uq_charging_sessions_live_card",
        "charging_sessions",
        ["card_id"],
        unique=True,
        postgresql_where=sa.text(f"card_id IS NOT NULL AND {LIVE}"),
    )


def downgrade() -> None:
    op.drop_index("uq_charging_sessions_live_card", table_name="charging_sessions")
    op.drop_column("charging_sessions", "card_id")
