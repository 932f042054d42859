#!/bin/sh
# One-shot job in temporalio/admin-tools: create or upgrade Temporal's schemas in its own
# databases, as its own user. Safe on every deploy: an existing schema is only upgraded to the
# version this admin-tools image carries (keep it equal to the temporalio/server version).
set -eu
: "${SQL_PASSWORD:?}"  # read by temporal-sql-tool
SCHEMA=/etc/temporal/schema/postgresql/v12

sql() {
    db="$1"
    shift
    temporal-sql-tool --plugin postgres12 --ep postgres -p 5432 -u temporal --db "$db" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
    db="${pair%%:*}"
    dir="${pair##*:}"
    # The databases exist already (postgres-init.sh); on a server where they do not, create them.
    sql "$db" create 2>/dev/null || echo "database $db exists"
    # setup-schema only initialises an empty database (version 0.0); on one already set up it
    # fails, and update-schema below reports any real problem.
    sql "$db" setup-schema -v 0.0 2>/dev/null || echo "schema of $db already initialised"
    sql "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "temporal schemas are up to date"
