"""Charging session records: admission (checks + claiming the connector), upserts, discards.

The `charging_sessions` row is written only by these activities, on behalf of the session's
workflow. Every write is idempotent, so a retried activity changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.card_sessions import CardSessionActivities, CardSessionStore
from activities.metrics import SESSIONS_FINISHED
from activities.refusals import refusing
from activities.stations import (
    OUT_OF_ORDER_STATUSES,
    STARTABLE_STATUSES,
    LocateStation,
    StationActivities,
    StationDirectory,
)
from activities.transactions import TransactionActivities
from db.clients import ensure_client
from db.models import ChargingSessionRecord
from db.session_rows import claim_connector
from domain.contracts.notify_channels import SESSION_PROGRESS
from domain.contracts.session_record import SessionRecord
from domain.sessions import (
    FINAL_STATE_VALUES,
    LIVE_STATE_VALUES,
    AlreadyCharging,
    ConnectorBusy,
    ConnectorNotFound,
    ConnectorUnavailable,
    SessionState,
    StationNotFound,
    StationOffline,
)

log = structlog.get_logger(__name__)

OPEN_SESSION = "open_session"
RECORD_SESSION = "record_session"
DISCARD_SESSION = "discard_session"


@dataclass(frozen=True)
class OpenSession:
    session_id: str
    client_id: str
    station_id: str
    connector_id: int
    reserved_tyiyn: int


@dataclass(frozen=True)
class OpenedSession:
    """The tariff snapshot and where to send RemoteStart."""

    price_tyiyn_per_kwh: int
    gateway_queue: str | None
    # The connector's maximum power, snapshotted with the tariff: the plausibility bound of
    # the session's meter readings (0 in histories from before it: looked up at settlement).
    max_power_w: int = 0


class SessionStore:
    """Reads and writes `charging_sessions`; each call is its own short transaction."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions
        self._directory = StationDirectory()

    async def open(self, request: OpenSession) -> OpenedSession:
        """Check the station can start a session for this client now and claim the connector
        with a `pending` row. The partial unique index on live sessions per connector makes
        the claim atomic against a concurrent start by anyone else."""
        try:
            async with self._db_sessions() as session, session.begin():
                return await self._open(session, request)
        except IntegrityError as exc:
            if "uq_charging_sessions_live_connector" in str(exc.orig):
                raise ConnectorBusy("the connector was just taken by another session") from None
            raise

    async def _open(self, session: AsyncSession, request: OpenSession) -> OpenedSession:
        location = await self._directory.locate(
            session, LocateStation(request.station_id, request.connector_id)
        )
        existing = await session.get(ChargingSessionRecord, request.session_id)
        if existing is not None:  # a retry of an admission that already committed
            return OpenedSession(
                existing.price_tyiyn_per_kwh, location.gateway_queue, location.max_power_w
            )
        if not location.known:
            raise StationNotFound(f"station {request.station_id!r} does not exist")
        if location.connector_status is None:
            raise ConnectorNotFound(
                f"station {request.station_id!r} has no connector {request.connector_id}"
            )
        if not location.enabled:
            raise ConnectorUnavailable(f"station {request.station_id!r} is disabled")
        if location.gateway_queue is None:
            raise StationOffline(f"station {request.station_id!r} is not connected")
        live_owner = await session.scalar(
            select(ChargingSessionRecord.client_id).where(
                ChargingSessionRecord.station_id == request.station_id,
                ChargingSessionRecord.connector_id == request.connector_id,
                ChargingSessionRecord.state.in_(LIVE_STATE_VALUES),
            )
        )
        if live_owner == request.client_id:
            raise AlreadyCharging("you already have a session on this connector")
        if live_owner is not None:
            raise ConnectorBusy("the connector is in use by another session")
        status = location.connector_status
        if status in OUT_OF_ORDER_STATUSES:
            raise ConnectorUnavailable(f"the connector is {status}")
        if status not in STARTABLE_STATUSES:
            raise ConnectorBusy(f"the connector is {status}")
        await claim_connector(
            session,
            request,
            reserved_tyiyn=request.reserved_tyiyn,
            price_tyiyn_per_kwh=location.price_tyiyn_per_kwh,
        )
        return OpenedSession(
            location.price_tyiyn_per_kwh, location.gateway_queue, location.max_power_w
        )

    async def record(self, record: SessionRecord) -> None:
        values = ChargingSessionRecord.values_of(record)
        upsert = insert(ChargingSessionRecord).values(values)
        changes = {k: v for k, v in values.items() if k != "id"} | {
            "updated_at": func.now(),
            # The limit is fixed at admission; a payload from before it was recorded has 0.
            "energy_limit_wh": func.greatest(
                upsert.excluded.energy_limit_wh, ChargingSessionRecord.energy_limit_wh
            ),
        }
        statement = upsert.on_conflict_do_update(
            index_elements=[ChargingSessionRecord.id],
            set_=changes,
            # A final row is never reopened, whatever order retries arrive in.
            where=ChargingSessionRecord.state.not_in(FINAL_STATE_VALUES),
        ).returning(ChargingSessionRecord.id)
        async with self._db_sessions() as session, session.begin():
            await ensure_client(session, record.client_id)
            written = (await session.execute(statement)).first() is not None
            if written:
                # Live session streams re-read the session (api/session_feed.py).
                await session.execute(select(func.pg_notify(SESSION_PROGRESS, record.session_id)))
        # The row just became final: counted once per session.
        if written and record.state in FINAL_STATE_VALUES:
            SESSIONS_FINISHED.labels(record.state).inc()
        log.info(
            "session recorded",
            session_id=record.session_id,
            station_id=record.station_id,
            state=record.state,
        )

    async def discard(self, session_id: str) -> None:
        """Remove the claim of a start that was refused after it was made (no money moved)."""
        async with self._db_sessions() as session, session.begin():
            await session.execute(
                delete(ChargingSessionRecord).where(
                    ChargingSessionRecord.id == session_id,
                    ChargingSessionRecord.state == SessionState.PENDING.value,
                )
            )


class SessionActivities:
    """Temporal activities over the session records; refusals are non-retryable failures
    whose type is the domain error's class name (see domain.sessions.START_REJECTIONS)."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store

    @activity.defn(name=OPEN_SESSION)
    async def open_session(self, request: OpenSession) -> OpenedSession:
        return await refusing(self._store.open(request))

    @activity.defn(name=RECORD_SESSION)
    async def record_session(self, record: SessionRecord) -> None:
        await self._store.record(record)

    @activity.defn(name=DISCARD_SESSION)
    async def discard_session(self, session_id: str) -> None:
        await self._store.discard(session_id)


def charging_activities(db_sessions: async_sessionmaker[AsyncSession]) -> list[Callable[..., Any]]:
    """The activities the charging workflow needs besides the ledger's reserve/capture/release
    (which worker.py registers once for every workflow) and the gateway's commands."""
    store = SessionActivities(SessionStore(db_sessions))
    cards = CardSessionActivities(CardSessionStore(db_sessions))
    stations = StationActivities(db_sessions)
    transactions = TransactionActivities(db_sessions)
    return [
        store.open_session,
        store.record_session,
        store.discard_session,
        cards.open_card_session,
        stations.locate_station,
        transactions.recorded_transaction,
        transactions.recorded_start,
        transactions.assess_meter_readings,
    ]
