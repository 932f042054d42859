"""The live session stream's message: the session as `GET /charging/{id}` reads it (workflow
and stored meter values while live, the record once final), plus power and reservation left."""

from __future__ import annotations

from sqlalchemy import select

from api.client_scope import client_scope
from api.deps import ApiContext
from api.v1.charging_schemas import SessionProgress
from api.v1.charging_service import ChargingService
from db.models import MeterValue, OcppTransaction
from domain.sessions import FINAL_STATES, SessionState

_FINAL = frozenset(state.value for state in FINAL_STATES)
_POWERED = frozenset({SessionState.CHARGING.value, SessionState.STOPPING.value})


async def _power_w(context: ApiContext, client_id: str, session_id: str) -> int | None:
    """The newest power the charger reported for the session's transaction."""
    async with client_scope(context.sessions, client_id) as session:
        power: int | None = await session.scalar(
            select(MeterValue.power_w)
            .join(OcppTransaction, OcppTransaction.id == MeterValue.transaction_id)
            .where(OcppTransaction.session_id == session_id, MeterValue.power_w.is_not(None))
            .order_by(MeterValue.measured_at.desc(), MeterValue.id.desc())
            .limit(1)
        )
    return power


async def session_progress(context: ApiContext, client_id: str, session_id: str) -> SessionProgress:
    """Raises SessionNotFound for an unknown or someone else's session, as GET does."""
    current = await ChargingService(context).get(client_id, session_id)
    final = current.state in _FINAL
    power = await _power_w(context, client_id, session_id) if current.state in _POWERED else None
    return SessionProgress(
        **current.model_dump(exclude={"review_reason", "currency", "reserved", "cost", "refunded"}),
        type="final" if final else "session",
        power_w=power,
        remaining_tyiyn=0 if final else max(current.reserved_tyiyn - current.cost_tyiyn, 0),
    )
