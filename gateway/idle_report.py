"""A connector the charger reports idle while its session's transaction is still open here:
the StopTransaction never came (the charger gave up on it), so the session is told and settles
on what was recorded instead of waiting for a stop that will not come."""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from domain.contracts.session_signals import CONNECTOR_IDLE, ConnectorIdle
from gateway.context import GatewayContext
from gateway.workflow_signals import SignalFailed

log = structlog.get_logger("gateway.idle")

# OCPP 1.6 statuses of a connector without a transaction.
IDLE_STATUSES = frozenset({"Available", "Finishing"})


def reports_idle(connector_id: int, status: str) -> bool:
    return connector_id >= 1 and status in IDLE_STATUSES


async def report_idle(
    ctx: GatewayContext, station_id: str, connector_id: int, status: str, at: datetime
) -> None:
    """After a short wait (a StopTransaction sent along with the status is stored by then),
    signal the session whose transaction the database still has open on the connector.
    Costs a signal only when a stop is really missing."""
    await asyncio.sleep(ctx.config.idle_report_delay_s)
    try:
        row = await ctx.store.open_session_transaction(station_id, connector_id, before=at)
        if row is None or row.session_id is None:
            return
        idle = ConnectorIdle(transaction_id=row.id, status=status, reported_at=at)
        delivered = await ctx.signals.send(row.session_id, CONNECTOR_IDLE, idle)
    except SignalFailed as exc:
        # The session also settles from the record when its RemoteStop is refused or its
        # grace period ends; this report only makes it sooner.
        log.warning("idle report not delivered", station_id=station_id, error=str(exc))
        return
    except Exception:
        log.exception("idle report failed", station_id=station_id, connector_id=connector_id)
        return
    log.info(
        "connector idle with an open transaction",
        station_id=station_id,
        connector_id=connector_id,
        status=status,
        transaction_id=row.id,
        session_id=row.session_id,
        delivered=delivered,
    )
