"""What a running transaction has delivered so far, from its stored meter readings, by the rule
settlement bills with (domain.meter_readings): a glitch sample shows as neither energy nor
cost, a register reset does not hide what was delivered before it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import MeterValue, OcppTransaction
from domain import meter_readings
from domain.meter_readings import MeterPoint

# A stream catching up on a backlog (a charger uploading what it kept while offline) is sent at
# most this many of the newest samples at once; the energy of the last one covers the rest.
MAX_SAMPLES_AT_ONCE = 50


@dataclass(frozen=True, slots=True)
class LiveSample:
    """One stored meter sample and what the transaction had delivered by it."""

    id: int  # the meter_values row: a stream's cursor
    energy_wh: int | None  # billable energy up to this sample; None: no energy reading yet
    power_w: int | None  # the newest power reported up to this sample


async def delivered_wh(session: AsyncSession, transaction_id: int, max_power_w: int) -> int | None:
    """None: the transaction is unknown or has no energy reading yet."""
    newest = await samples_after(session, transaction_id, max_power_w, after_id=None)
    return newest[-1].energy_wh if newest else None


async def samples_after(
    session: AsyncSession, transaction_id: int, max_power_w: int, *, after_id: int | None
) -> list[LiveSample]:
    """The samples stored after `after_id` in time order (at most MAX_SAMPLES_AT_ONCE, the
    newest), or just the newest sample when there is none after it or `after_id` is None; []
    when the transaction is unknown or has no sample."""
    start = (
        await session.execute(
            select(OcppTransaction.started_at, OcppTransaction.meter_start_wh).where(
                OcppTransaction.id == transaction_id
            )
        )
    ).first()
    if start is None:
        return []
    rows = (
        await session.execute(
            select(MeterValue.id, MeterValue.measured_at, MeterValue.energy_wh, MeterValue.power_w)
            .where(MeterValue.transaction_id == transaction_id)
            .order_by(MeterValue.measured_at, MeterValue.id)
        )
    ).all()
    if not rows:
        return []
    wanted = [index for index, row in enumerate(rows) if after_id is not None and row.id > after_id]
    wanted = wanted[-MAX_SAMPLES_AT_ONCE:] or [len(rows) - 1]
    shown = set(wanted)
    first_point = MeterPoint(start.started_at, start.meter_start_wh)
    max_power = max_power_w or meter_readings.UNKNOWN_TYPE_MAX_POWER_W
    points: list[MeterPoint] = []
    power: int | None = None
    samples: list[LiveSample] = []
    for index, row in enumerate(rows[: wanted[-1] + 1]):
        if row.energy_wh is not None:
            points.append(MeterPoint(row.measured_at, row.energy_wh))
        if row.power_w is not None:
            power = row.power_w
        if index in shown:
            energy = (
                meter_readings.assess(first_point, points[:-1], points[-1], max_power).billable_wh
                if points
                else None
            )
            samples.append(LiveSample(row.id, energy, power))
    return samples
