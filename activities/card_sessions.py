"""Admission of a card-started session: the card, the connector and the owner's balance are
checked and the connector and the card are claimed with a `pending` row, in one transaction.

The charger has already started its transaction when this runs (StartTransaction with the
card's tag), so the station's connection and the connector's status are not checked: the
charger is there and busy. What is checked: the card is still active and its owner's; the
station exists and is enabled; no live session holds the connector or the card (partial unique
indexes make both claims atomic); the owner has at least the minimum available. The amount to
reserve is the configured one capped by what is available; the reservation itself is the
workflow's next step (the ledger may still refuse it if the balance moved meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.refusals import refusing
from activities.stations import LocateStation, StationDirectory
from db.models import ChargingSessionRecord, LedgerAccount, RfidCard
from db.session_rows import claim_connector
from domain.cards import CardInUse, CardNotUsable
from domain.errors import InsufficientFunds
from domain.ledger import AccountKind
from domain.sessions import (
    LIVE_STATE_VALUES,
    ConnectorBusy,
    ConnectorNotFound,
    ConnectorUnavailable,
    StationNotFound,
)

OPEN_CARD_SESSION = "open_card_session"


@dataclass(frozen=True)
class OpenCardSession:
    session_id: str
    client_id: str  # the card's owner when the gateway looked (checked again here)
    station_id: str
    connector_id: int
    id_tag: str  # the card's stored tag
    most_tyiyn: int  # reserve this much at most
    min_balance_tyiyn: int


@dataclass(frozen=True)
class OpenedCardSession:
    """The tariff snapshot, the amount to reserve and where the charger's commands go."""

    price_tyiyn_per_kwh: int
    reserved_tyiyn: int
    gateway_queue: str | None
    max_power_w: int
    card_id: int


class CardSessionStore:
    def __init__(
        self,
        db_sessions: async_sessionmaker[AsyncSession],
        directory: StationDirectory | None = None,
    ) -> None:
        self._db_sessions = db_sessions
        self._directory = directory or StationDirectory()

    async def open(self, request: OpenCardSession) -> OpenedCardSession:
        try:
            async with self._db_sessions() as session, session.begin():
                return await self._open(session, request)
        except IntegrityError as exc:
            text = str(exc.orig)
            if "uq_charging_sessions_live_card" in text:
                raise CardInUse("the card is already in a live session") from None
            if "uq_charging_sessions_live_connector" in text:
                raise ConnectorBusy("the connector was just taken by another session") from None
            raise

    async def _open(self, session: AsyncSession, request: OpenCardSession) -> OpenedCardSession:
        location = await self._directory.locate(
            session, LocateStation(request.station_id, request.connector_id)
        )
        existing = await session.get(ChargingSessionRecord, request.session_id)
        if existing is not None and existing.card_id is not None:
            # A retry of an admission that already committed.
            return OpenedCardSession(
                existing.price_tyiyn_per_kwh,
                existing.reserved_tyiyn,
                location.gateway_queue,
                location.max_power_w,
                existing.card_id,
            )
        card = (
            await session.execute(
                select(RfidCard.id, RfidCard.client_id, RfidCard.blocked_at).where(
                    RfidCard.id_tag == request.id_tag
                )
            )
        ).first()
        if card is None or card.client_id != request.client_id or card.blocked_at is not None:
            raise CardNotUsable(f"card {request.id_tag} is not an active card of its owner")
        if not location.known:
            raise StationNotFound(f"station {request.station_id!r} does not exist")
        if location.connector_status is None:
            raise ConnectorNotFound(
                f"station {request.station_id!r} has no connector {request.connector_id}"
            )
        if not location.enabled:
            raise ConnectorUnavailable(f"station {request.station_id!r} is disabled")
        busy = await session.scalar(
            select(ChargingSessionRecord.id).where(
                ChargingSessionRecord.station_id == request.station_id,
                ChargingSessionRecord.connector_id == request.connector_id,
                ChargingSessionRecord.state.in_(LIVE_STATE_VALUES),
            )
        )
        if busy is not None:
            raise ConnectorBusy("the connector is in use by another session")
        in_use = await session.scalar(
            select(ChargingSessionRecord.id).where(
                ChargingSessionRecord.card_id == card.id,
                ChargingSessionRecord.state.in_(LIVE_STATE_VALUES),
            )
        )
        if in_use is not None:
            raise CardInUse("the card is already in a live session")
        available = await session.scalar(
            select(LedgerAccount.balance_tyiyn).where(
                LedgerAccount.client_id == request.client_id,
                LedgerAccount.kind == AccountKind.AVAILABLE.value,
            )
        )
        available = int(available or 0)
        if available <= 0 or available < request.min_balance_tyiyn:
            raise InsufficientFunds(
                f"{available} tyiyn available, at least {request.min_balance_tyiyn} needed"
            )
        reserved = min(request.most_tyiyn, available)
        await claim_connector(
            session,
            request,
            reserved_tyiyn=reserved,
            price_tyiyn_per_kwh=location.price_tyiyn_per_kwh,
            card_id=card.id,
        )
        return OpenedCardSession(
            location.price_tyiyn_per_kwh,
            reserved,
            location.gateway_queue,
            location.max_power_w,
            card.id,
        )


class CardSessionActivities:
    def __init__(self, store: CardSessionStore) -> None:
        self._store = store

    @activity.defn(name=OPEN_CARD_SESSION)
    async def open_card_session(self, request: OpenCardSession) -> OpenedCardSession:
        return await refusing(self._store.open(request))
