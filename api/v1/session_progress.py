"""The live session stream's message, read from the database alone: the session row, the stored
meter readings of its transaction (energy by the rule `GET` and settlement use, the newest
power) and whether the charger has already reported the stop.

Not from the workflow: a query is a billable Temporal action, and a stream re-reads on every
meter sample; `GET /charging/{id}` asks the workflow once per request instead. The row says
`pending` until `charging`; the stream shows `starting` once the gateway has stored the
session's RemoteStart (it NOTIFYs then), as the workflow does once the charger accepts it.

A stream passes the last sample it was sent and gets a message for every sample stored since
(api.v1.live_energy bounds a backlog), so a watcher sees each reading, not only the newest."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.client_scope import client_scope
from api.deps import ApiContext
from api.v1.charging_schemas import SessionProgress
from api.v1.live_energy import samples_after
from db.models import Connector, OcppRemoteStart, OcppTransaction
from db.session_rows import own_session_row
from domain import meter_readings
from domain.contracts.session_record import SessionRecord, record_fields, with_live_energy
from domain.sessions import FINAL_STATE_VALUES, SessionNotFound, SessionState


@dataclass(frozen=True, slots=True)
class Progress:
    messages: list[SessionProgress]  # oldest first; the last is the session as it is now
    last_sample_id: int | None  # pass it back as `after_sample_id` for the next read


async def session_progress(
    context: ApiContext, client_id: str, session_id: str, after_sample_id: int | None = None
) -> Progress:
    """The session's messages since `after_sample_id` (None: just its current state).
    Raises SessionNotFound for an unknown or someone else's session (row-level security)."""
    async with client_scope(context.db_sessions, client_id) as session:
        row = await own_session_row(session, client_id, session_id)
        if row is None:
            raise SessionNotFound(f"no charging session {session_id!r}")
        current, created_at = row.to_record(), row.created_at
        if current.state in FINAL_STATE_VALUES:
            final = _message(current, created_at, final=True, power_w=None)
            return Progress([final], after_sample_id)
        if current.transaction_id is not None:
            return await _metered(
                session, current, current.transaction_id, created_at, after_sample_id
            )
    if current.state == SessionState.PENDING and await _charger_asked(context, session_id):
        current = replace(current, state=SessionState.STARTING.value)
    return Progress([_message(current, created_at, final=False, power_w=None)], after_sample_id)


async def _charger_asked(context: ApiContext, session_id: str) -> bool:
    """Whether the gateway has sent the session's RemoteStart (the row says `pending` until the
    charger's StartTransaction). The RemoteStart rows are the gateway's, outside the client
    scope: read only for a session the client scope has just shown to be the caller's."""
    async with context.db_sessions() as session:
        found = await session.scalar(
            select(OcppRemoteStart.id_tag).where(OcppRemoteStart.id_tag == session_id)
        )
    return found is not None


async def _metered(
    session: AsyncSession,
    current: SessionRecord,
    transaction_id: int,
    created_at: datetime,
    after_sample_id: int | None,
) -> Progress:
    connector = await session.get(Connector, (current.station_id, current.connector_id))
    max_power = meter_readings.max_power_w(
        connector.max_power_w if connector is not None else None,
        connector.current_type if connector is not None else None,
    )
    samples = await samples_after(session, transaction_id, max_power, after_id=after_sample_id)
    stopped_at = await session.scalar(
        select(OcppTransaction.stopped_at).where(OcppTransaction.id == transaction_id)
    )
    sampled = [(with_live_energy(current, sample.energy_wh), sample.power_w) for sample in samples]
    if not sampled:
        sampled = [(current, None)]
    if stopped_at is not None:
        # The charger reported the stop; the workflow is settling it.
        last, power_w = sampled[-1]
        sampled[-1] = (replace(last, state=SessionState.STOPPING.value), power_w)
    messages = [
        _message(record, created_at, final=False, power_w=power_w) for record, power_w in sampled
    ]
    seen = [sample.id for sample in samples]
    if after_sample_id is not None:
        seen.append(after_sample_id)
    return Progress(messages, max(seen, default=None))


def _message(
    record: SessionRecord, created_at: datetime, *, final: bool, power_w: int | None
) -> SessionProgress:
    remaining = 0 if final else max(record.reserved_tyiyn - record.cost_tyiyn, 0)
    return SessionProgress(
        **record_fields(record),
        created_at=created_at,
        type="final" if final else "session",
        power_w=power_w,
        remaining_tyiyn=remaining,
    )
