"""What a running transaction has delivered so far, from its stored meter readings, by the rule
settlement bills with (domain.meter_readings): a glitch sample shows as neither energy nor
cost, a register reset does not hide what was delivered before it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import MeterValue, OcppTransaction
from domain import meter_readings
from domain.meter_readings import MeterPoint


async def delivered_wh(session: AsyncSession, transaction_id: int, max_power_w: int) -> int | None:
    """None: the transaction is unknown or has no energy reading yet."""
    start = (
        await session.execute(
            select(OcppTransaction.started_at, OcppTransaction.meter_start_wh).where(
                OcppTransaction.id == transaction_id
            )
        )
    ).first()
    if start is None:
        return None
    rows = (
        await session.execute(
            select(MeterValue.measured_at, MeterValue.energy_wh)
            .where(MeterValue.transaction_id == transaction_id, MeterValue.energy_wh.is_not(None))
            .order_by(MeterValue.measured_at, MeterValue.id)
        )
    ).all()
    points = [MeterPoint(at, wh) for at, wh in rows if wh is not None]
    if not points:
        return None
    found = meter_readings.assess(
        MeterPoint(start.started_at, start.meter_start_wh),
        points[:-1],
        points[-1],
        max_power_w or meter_readings.UNKNOWN_TYPE_MAX_POWER_W,
    )
    return found.billable_wh
