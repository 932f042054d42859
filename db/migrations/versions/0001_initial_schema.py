"""Initial schema: clients, ledger, stations, OCPP data, sessions, top-ups, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:15:08.491937
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("latitude", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("longitude", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
    )
    op.create_table(
        "meter_values",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=True),
        sa.Column("power_w", sa.Integer(), nullable=True),
        sa.Column("soc_percent", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_values")),
    )
    op.create_index(
        "ix_meter_values_transaction_id_id", "meter_values", ["transaction_id", "id"], unique=False
    )
    op.create_table(
        "payment_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("topup_id", sa.String(length=64), nullable=True),
        sa.Column("trans_id", sa.String(length=64), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_audit")),
    )
    op.create_index("ix_payment_audit_topup_id", "payment_audit", ["topup_id"], unique=False)
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("balance_tyiyn", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind IN ('available', 'held')) = (client_id IS NOT NULL)",
            name=op.f("ck_ledger_accounts_client_owner"),
        ),
        sa.CheckConstraint(
            "kind NOT IN ('available', 'held') OR balance_tyiyn >= 0",
            name=op.f("ck_ledger_accounts_client_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_ledger_accounts_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    op.create_index("ix_ledger_accounts_client_id", "ledger_accounts", ["client_id"], unique=False)
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("op_key", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("amount_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_tyiyn > 0", name=op.f("ck_ledger_entries_positive_amount")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_ledger_entries_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("op_key", name=op.f("uq_ledger_entries_op_key")),
    )
    op.create_index(
        "ix_ledger_entries_client_id_id", "ledger_entries", ["client_id", "id"], unique=False
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price_tyiyn_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("registration_status", sa.String(length=16), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("firmware_version", sa.String(length=64), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("price_tyiyn_per_kwh > 0", name=op.f("ck_stations_positive_price")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stations_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "topups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("amount_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("qr_url", sa.String(length=1000), nullable=True),
        sa.Column("app_link", sa.String(length=1000), nullable=True),
        sa.Column("site_pay", sa.String(length=1000), nullable=True),
        sa.Column("trans_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_tyiyn > 0", name=op.f("ck_topups_positive_amount")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_topups_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topups")),
        sa.UniqueConstraint("order_id", name=op.f("uq_topups_order_id")),
    )
    op.create_index(
        "ix_topups_client_id_created_at", "topups", ["client_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_topups_invoice_id"), "topups", ["invoice_id"], unique=False)
    op.create_index("ix_topups_state", "topups", ["state"], unique=False)
    op.create_table(
        "charging_sessions",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("price_tyiyn_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("reserved_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("cost_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("refunded_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_charging_sessions_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_charging_sessions_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_sessions")),
    )
    op.create_index(
        "ix_charging_sessions_client_id_created_at",
        "charging_sessions",
        ["client_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_charging_sessions_live_connector",
        "charging_sessions",
        ["station_id", "connector_id"],
        unique=True,
        postgresql_where=sa.text("state IN ('pending', 'starting', 'charging', 'stopping')"),
    )
    op.create_table(
        "connectors",
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("connector_id >= 1", name=op.f("ck_connectors_positive_id")),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_connectors_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("station_id", "connector_id", name=op.f("pk_connectors")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_tyiyn", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_tyiyn <> 0", name=op.f("ck_ledger_postings_non_zero")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_postings_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_postings_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    op.create_index(
        "ix_ledger_postings_account_id", "ledger_postings", ["account_id"], unique=False
    )
    op.create_index("ix_ledger_postings_entry_id", "ledger_postings", ["entry_id"], unique=False)
    op.create_table(
        "ocpp_transactions",
        sa.Column("id", sa.Integer(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(length=20), nullable=False),
        sa.Column("session_id", sa.String(length=20), nullable=True),
        sa.Column("energy_limit_wh", sa.BigInteger(), nullable=True),
        sa.Column("meter_start_wh", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meter_stop_wh", sa.BigInteger(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_ocpp_transactions_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpp_transactions")),
        sa.UniqueConstraint(
            "station_id",
            "connector_id",
            "id_tag",
            "meter_start_wh",
            "started_at",
            name="uq_ocpp_transactions_natural_key",
        ),
    )
    op.create_index(
        "ix_ocpp_transactions_session_id", "ocpp_transactions", ["session_id"], unique=False
    )
    op.create_table(
        "provider_transactions",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("trans_id", sa.String(length=64), nullable=False),
        sa.Column("topup_id", sa.String(length=64), nullable=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_tyiyn", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("credited_entry_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["credited_entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_provider_transactions_credited_entry_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["topup_id"], ["topups.id"], name=op.f("fk_provider_transactions_topup_id_topups")
        ),
        sa.PrimaryKeyConstraint("provider", "trans_id", name=op.f("pk_provider_transactions")),
    )
    op.create_table(
        "station_connections",
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("gateway_queue", sa.String(length=128), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote_address", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_station_connections_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_connections")),
    )


def downgrade() -> None:
    op.drop_table("station_connections")
    op.drop_table("provider_transactions")
    op.drop_index("ix_ocpp_transactions_session_id", table_name="ocpp_transactions")
    op.drop_table("ocpp_transactions")
    op.drop_index("ix_ledger_postings_entry_id", table_name="ledger_postings")
    op.drop_index("ix_ledger_postings_account_id", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_table("connectors")
    op.drop_index(
        "uq_charging_sessions_live_connector",
        table_name="charging_sessions",
        postgresql_where=sa.text("state IN ('pending', 'starting', 'charging', 'stopping')"),
    )
    op.drop_index("ix_charging_sessions_client_id_created_at", table_name="charging_sessions")
    op.drop_table("charging_sessions")
    op.drop_index("ix_topups_state", table_name="topups")
    op.drop_index(op.f("ix_topups_invoice_id"), table_name="topups")
    op.drop_index("ix_topups_client_id_created_at", table_name="topups")
    op.drop_table("topups")
    op.drop_table("stations")
    op.drop_index("ix_ledger_entries_client_id_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index("ix_ledger_accounts_client_id", table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
    op.drop_index("ix_payment_audit_topup_id", table_name="payment_audit")
    op.drop_table("payment_audit")
    op.drop_index("ix_meter_values_transaction_id_id", table_name="meter_values")
    op.drop_table("meter_values")
    op.drop_table("locations")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("clients")
