"""Commands follow the charger: when a station connects, its live sessions are told which
gateway holds it now, so a command waiting for the charger is sent at once (not on a backoff
timer) and the next one never goes to a dead gateway's queue."""

from __future__ import annotations

from datetime import datetime

import structlog

from domain.contracts.session_signals import STATION_CONNECTED, StationConnected
from gateway.workflow_signals import SignalFailed, WorkflowSignals

log = structlog.get_logger("gateway.follow")


async def tell_sessions(
    signals: WorkflowSignals,
    station_id: str,
    session_ids: list[str],
    queue: str,
    at: datetime,
) -> None:
    """One signal per live session of the station (at most one per connector); the ids come
    with the connect's own bookkeeping (gateway/bookkeeping.py), so a station without a live
    session costs nothing here."""
    connected = StationConnected(station_id=station_id, gateway_queue=queue, connected_at=at)
    for session_id in session_ids:
        try:
            await signals.send(session_id, STATION_CONNECTED, connected)
        except SignalFailed as exc:
            # The session still finds the station by its own lookups, only later.
            log.warning(
                "station_connected not delivered",
                station_id=station_id,
                session_id=session_id,
                error=str(exc),
            )
            continue
        log.info("session told where its charger is", station_id=station_id, session_id=session_id)
