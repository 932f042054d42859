"""PostgreSQL NOTIFY channels: the gateway and the worker publish, every api process LISTENs."""

from __future__ import annotations

# Connector status changes and online/offline transitions, as JSON
# `{"event", "station_id", "at", ...}`, for the locations stream.
STATION_STATUS = "station_status"

# The payload is a session id whose live view (state, energy, cost) may have changed: a meter
# sample stored by the gateway, a session row written by the worker.
SESSION_PROGRESS = "charging_session"
