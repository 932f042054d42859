"""PostgreSQL NOTIFY channels: the gateway publishes, every api process LISTENs."""

from __future__ import annotations

# Connector status changes and online/offline transitions, as JSON
# `{"event", "station_id", "at", ...}`, for the locations stream.
STATION_STATUS = "station_status"
