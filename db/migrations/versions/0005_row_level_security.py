"""Row-level security: the API reads and writes client-owned rows as `evpower_client`, which
sees only the rows of the client named in `app.client_id`.

The model: the connecting user owns the tables and is not subject to RLS (no FORCE), so the
worker, the gateway, migrations and the anonymous webhook work as before. A request on behalf
of a client runs its transaction under `SET LOCAL ROLE evpower_client` with
`app.client_id` set locally (api/client_scope.py); that role has no BYPASSRLS, may touch only
what client requests need, and every client-owned table filters it to one client. Tables it
is granted nothing on (postings, provider transactions, payment audit, ...) are refused
outright, which is stronger than a policy.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 16:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "evpower_client"
POLICY = "client_isolation"
CURRENT_CLIENT = "current_setting('app.client_id', true)"
# Client-owned table → (its owner column, what a client request may do with its rows).
CLIENT_OWNED: dict[str, tuple[str, str]] = {
    "clients": ("id", "SELECT, INSERT"),
    "charging_sessions": ("client_id", "SELECT"),
    "topups": ("client_id", "SELECT"),
    "ledger_accounts": ("client_id", "SELECT"),
    "ledger_entries": ("client_id", "SELECT"),
    "idempotency_keys": ("client_id", "SELECT, INSERT, UPDATE, DELETE"),
}
# Station data every driver may see; a live session's energy is read from the OCPP tables.
SHARED_READS = (
    "locations",
    "stations",
    "connectors",
    "station_connections",
    "ocpp_transactions",
    "meter_values",
)


def upgrade() -> None:
    # Roles belong to the cluster, not the database: another database of the same server
    # (a second environment, a parallel test run) may have created it already.
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS NOSUPERUSER NOINHERIT;
        EXCEPTION WHEN duplicate_object THEN NULL;
        END $$
        """
    )
    op.execute(f"GRANT {ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    for table in SHARED_READS:
        op.execute(f"GRANT SELECT ON {table} TO {ROLE}")
    for table, (column, privileges) in CLIENT_OWNED.items():
        op.execute(f"GRANT {privileges} ON {table} TO {ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON {table} FOR ALL TO {ROLE}"
            f" USING ({column} = {CURRENT_CLIENT}) WITH CHECK ({column} = {CURRENT_CLIENT})"
        )


def downgrade() -> None:
    for table in CLIENT_OWNED:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM {ROLE}")
    for table in SHARED_READS:
        op.execute(f"REVOKE ALL ON {table} FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE {ROLE} FROM CURRENT_USER")
    # Still granted something in another database of this server: leave it to that one.
    op.execute(
        f"""
        DO $$ BEGIN
            DROP ROLE {ROLE};
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE '{ROLE} is still used in another database; not dropped';
        END $$
        """
    )
