"""Charging session records: admission (checks, the connector's claim and, in one step, the
reservation), upserts, discards.

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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.admission import Admissions, CardClaim
from activities.card_sessions import CardSessionActivities
from activities.ledger import Ledger, LedgerActivities
from activities.metrics import SESSIONS_FINISHED
from activities.refusals import refusal, refusing
from activities.stations import StationActivities
from activities.transactions import TransactionActivities
from db.clients import ensure_client
from db.models import ChargingSessionRecord
from domain.contracts.charging import SessionClaim
from domain.contracts.notify_channels import SESSION_PROGRESS
from domain.contracts.session_record import SessionRecord
from domain.errors import DomainError, OpKeyConflict
from domain.sessions import FINAL_STATE_VALUES, SessionState
from domain.tariff import Tariff

log = structlog.get_logger(__name__)

ADMIT_SESSION = "admit_session"
OPEN_SESSION = "open_session"
RECORD_SESSION = "record_session"
DISCARD_SESSION = "discard_session"


@dataclass(frozen=True)
class AdmitSession(SessionClaim):
    """Admit the session in one step: check, claim, reserve. For a card start (`id_tag` set)
    `amount_tyiyn` is the most to reserve, capped by the owner's available balance."""

    amount_tyiyn: int
    id_tag: str | None = None  # the card's stored tag: a card-started session
    min_balance_tyiyn: int = 0  # a card start's owner must have this much available


@dataclass(frozen=True)
class Admitted:
    """What the session holds: the reservation, the tariff snapshot and the energy it buys,
    and where its charger's commands go."""

    reserved_tyiyn: int
    price_tyiyn_per_kwh: int
    energy_limit_wh: int
    gateway_queue: str | None
    max_power_w: int


@dataclass(frozen=True)
class OpenSession(SessionClaim):
    """The two-step admission's claim (its `reserve` follows as an activity of its own)."""

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
        self._admissions = Admissions(db_sessions)

    async def admit(self, request: AdmitSession) -> Admitted:
        card = (
            CardClaim(request.id_tag, request.min_balance_tyiyn)
            if request.id_tag is not None
            else None
        )
        claimed = await self._admissions.admit(request, request.amount_tyiyn, card)
        return Admitted(
            claimed.reserved_tyiyn,
            claimed.price_tyiyn_per_kwh,
            Tariff(claimed.price_tyiyn_per_kwh).energy_limit_wh(claimed.reserved_tyiyn),
            claimed.gateway_queue,
            claimed.max_power_w,
        )

    async def open(self, request: OpenSession) -> OpenedSession:
        """Check the station can start a session for this client now and claim the connector
        with a `pending` row (the two-step admission)."""
        claimed = await self._admissions.claim(request, request.reserved_tyiyn)
        return OpenedSession(
            claimed.price_tyiyn_per_kwh, claimed.gateway_queue, claimed.max_power_w
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

    @activity.defn(name=ADMIT_SESSION)
    async def admit_session(self, request: AdmitSession) -> Admitted:
        try:
            return await self._store.admit(request)
        except OpKeyConflict as exc:  # a fault, not a driver's "no": logged as a failure
            raise ApplicationError(exc.message, type="OpKeyConflict", non_retryable=True) from exc
        except DomainError as exc:
            raise refusal(exc) from exc

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
    ledger = LedgerActivities(Ledger(db_sessions))
    cards = CardSessionActivities(Admissions(db_sessions))
    stations = StationActivities(db_sessions)
    transactions = TransactionActivities(db_sessions)
    return [
        store.admit_session,
        store.open_session,
        store.record_session,
        store.discard_session,
        ledger.settle_session,
        cards.open_card_session,
        stations.locate_station,
        transactions.recorded_transaction,
        transactions.recorded_start,
        transactions.assess_meter_readings,
    ]
