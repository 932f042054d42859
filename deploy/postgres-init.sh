#!/bin/sh
# Runs once, when the postgres volume is initialised (/docker-entrypoint-initdb.d): EvPower and
# Temporal each get their own login role and databases, and neither is a superuser.
#   evpower  owns `evpower` and may create roles (migration 0005 creates evpower_client).
#   temporal owns `temporal` and `temporal_visibility` (its schema tool manages them).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v evpower_password="$EVPOWER_DB_PASSWORD" -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE evpower LOGIN CREATEROLE PASSWORD :'evpower_password';
CREATE DATABASE evpower OWNER evpower;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
