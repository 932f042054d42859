"""The live session stream's message, read from the database alone: the session row, the stored
meter readings of its transaction (energy by the rule `GET` and settlement use, the newest
power) and whether the charger has already reported the stop.

Not from the workflow: a query is a billable Temporal action, and a stream re-reads on every
meter sample; `GET /charging/{id}` asks the workflow once per request instead. What the row
does not hold is the workflow's `starting` (the row says `pending` until `charging`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.client_scope import client_scope
from api.deps import ApiContext
from api.v1.charging_schemas import ChargingSession, SessionProgress
from api.v1.charging_service import from_record
from api.v1.live_energy import delivered_wh
from db.models import ChargingSessionRecord, Connector, MeterValue, OcppTransaction
from domain import meter_readings
from domain.sessions import FINAL_STATES, SessionNotFound, SessionState
from domain.tariff import Tariff

_FINAL = frozenset(state.value for state in FINAL_STATES)
_DISPLAY_ONLY = {"review_reason", "currency", "reserved", "cost", "refunded"}


async def session_progress(context: ApiContext, client_id: str, session_id: str) -> SessionProgress:
    """Raises SessionNotFound for an unknown or someone else's session (row-level security)."""
    async with client_scope(context.sessions, client_id) as session:
        record = await session.scalar(
            select(ChargingSessionRecord).where(
                ChargingSessionRecord.id == session_id,
                ChargingSessionRecord.client_id == client_id,
            )
        )
        if record is None:
            raise SessionNotFound(f"no charging session {session_id!r}")
        current = from_record(record)
        if record.state in _FINAL:
            return _message(current, final=True, power_w=None)
        if record.transaction_id is None:
            return _message(current, final=False, power_w=None)
        return await _metered(session, record, record.transaction_id, current)


async def _metered(
    session: AsyncSession,
    record: ChargingSessionRecord,
    transaction_id: int,
    current: ChargingSession,
) -> SessionProgress:
    connector = await session.get(Connector, (record.station_id, record.connector_id))
    max_power = meter_readings.max_power_w(
        connector.max_power_w if connector is not None else None,
        connector.current_type if connector is not None else None,
    )
    energy = await delivered_wh(session, transaction_id, max_power)
    stopped_at = await session.scalar(
        select(OcppTransaction.stopped_at).where(OcppTransaction.id == transaction_id)
    )
    power = await session.scalar(
        select(MeterValue.power_w)
        .where(MeterValue.transaction_id == transaction_id, MeterValue.power_w.is_not(None))
        .order_by(MeterValue.measured_at.desc(), MeterValue.id.desc())
        .limit(1)
    )
    changes: dict[str, object] = {}
    if energy is not None and energy > current.energy_wh and record.price_tyiyn_per_kwh > 0:
        tariff = Tariff(record.price_tyiyn_per_kwh)
        changes["energy_wh"] = energy
        changes["cost_tyiyn"] = tariff.cost_tyiyn(energy, reserved_tyiyn=record.reserved_tyiyn)
    if stopped_at is not None:
        # The charger reported the stop; the workflow is settling it.
        changes["state"] = SessionState.STOPPING.value
    return _message(current.model_copy(update=changes), final=False, power_w=power)


def _message(current: ChargingSession, *, final: bool, power_w: int | None) -> SessionProgress:
    remaining = 0 if final else max(current.reserved_tyiyn - current.cost_tyiyn, 0)
    return SessionProgress(
        **current.model_dump(exclude=_DISPLAY_ONLY),
        type="final" if final else "session",
        power_w=power_w,
        remaining_tyiyn=remaining,
    )
