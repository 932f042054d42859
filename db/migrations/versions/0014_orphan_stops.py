"""Orphan stops: a StopTransaction for a transaction the database does not hold yet (its start
waited in a gateway's memory during a database outage) is stored as an `orphan_stop` event of
its station and transaction id. Charger-local ids of different stations may be equal, so an
event is unique per (station, transaction, kind), not per (transaction, kind).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "ocpp_transaction_events"


def upgrade() -> None:
    op.drop_constraint("uq_ocpp_transaction_events_tx_kind", TABLE, type_="unique")
    op.create_unique_constraint(
        "uq_ocpp_transaction_events_station_tx_kind",
        TABLE,
        ["station_id", "transaction_id", "kind"],
    )


def downgrade() -> None:
    op.drop_constraint("uq_ocpp_transaction_events_station_tx_kind", TABLE, type_="unique")
    op.create_unique_constraint(
        "uq_ocpp_transaction_events_tx_kind", TABLE, ["transaction_id", "kind"]
    )
