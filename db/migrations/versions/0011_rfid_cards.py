"""RFID cards linked to a client's account (`rfid_cards`): one owner per idTag, stored upper
case; a blocked card keeps its row (and its tag). Client-owned like the other client tables:
row-level security on `client_id` for `evpower_client`, which may list, link and block its own
cards (UPDATE only of `blocked_at`), never delete a row or change a tag.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "evpower_client"  # created by 0005
POLICY = "client_isolation"
CURRENT_CLIENT = "current_setting('app.client_id', true)"


def upgrade() -> None:
    op.create_table(
        "rfid_cards",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("id_tag", sa.String(20), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfid_cards")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_rfid_cards_client_id_clients")
        ),
        sa.UniqueConstraint("id_tag", name=op.f("uq_rfid_cards_id_tag")),
    )
    op.create_index(op.f("ix_rfid_cards_client_id"), "rfid_cards", ["client_id"])
    op.execute(f"GRANT SELECT, INSERT ON rfid_cards TO {ROLE}")
    op.execute(f"GRANT UPDATE (blocked_at) ON rfid_cards TO {ROLE}")
    op.execute("ALTER TABLE rfid_cards ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {POLICY} ON rfid_cards FOR ALL TO {ROLE}"
        f" USING (client_id = {CURRENT_CLIENT}) WITH CHECK (client_id = {CURRENT_CLIENT})"
    )


def downgrade() -> None:
    op.execute(f"DROP POLICY IF EXISTS {POLICY} ON rfid_cards")
    op.execute(f"REVOKE ALL ON rfid_cards FROM {ROLE}")
    op.drop_index(op.f("ix_rfid_cards_client_id"), table_name="rfid_cards")
    op.drop_table("rfid_cards")
