"""Admission of a charging session, app or card: the checks, the claim of the connector (and the
card) with the session's row, and the reservation, in one database transaction.

`admit` is the session's first step: the row and its hold (`reserve:{session_id}`) are written
together with the amount actually reserved, so a row never says `reserved` for money the ledger
does not hold, and a refusal (connector busy, insufficient funds, ...) writes nothing at all.
`claim` is the older two-step admission (claim here, `reserve` as its own activity), kept for
sessions whose histories took that path.

The partial unique indexes on live sessions per connector and per card make a claim atomic
against a concurrent start; a retried admission whose row exists returns what it admitted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ledger import Ledger, LedgerMovement, log_movement
from activities.stations import (
    OUT_OF_ORDER_STATUSES,
    STARTABLE_STATUSES,
    LocateStation,
    StationDirectory,
    StationLocation,
)
from db.models import ChargingSessionRecord, LedgerAccount, RfidCard
from db.session_rows import claim_connector
from domain.cards import CardInUse, CardNotUsable
from domain.contracts.charging import SessionClaim
from domain.errors import InsufficientFunds, InvalidAmount
from domain.ledger import AccountKind, Operation
from domain.sessions import (
    LIVE_STATE_VALUES,
    AlreadyCharging,
    ConnectorBusy,
    ConnectorNotFound,
    ConnectorUnavailable,
    StationNotFound,
    StationOffline,
)
from domain.tariff import Tariff


@dataclass(frozen=True)
class CardClaim:
    """A card start's part of the claim: the charger has started its transaction already."""

    id_tag: str  # the card's stored tag
    min_balance_tyiyn: int


@dataclass(frozen=True)
class Claimed:
    """What a claim decided: the tariff snapshot, the amount, and the charger's gateway."""

    price_tyiyn_per_kwh: int
    reserved_tyiyn: int
    gateway_queue: str | None
    max_power_w: int
    card_id: int | None


class Admissions:
    """Checks and claims in the caller's transaction; `admit` also reserves."""

    def __init__(
        self,
        db_sessions: async_sessionmaker[AsyncSession],
        directory: StationDirectory | None = None,
    ) -> None:
        self._db_sessions = db_sessions
        self._directory = directory or StationDirectory()
        self._ledger = Ledger(db_sessions)

    async def claim(
        self, request: SessionClaim, amount_tyiyn: int, card: CardClaim | None = None
    ) -> Claimed:
        """Check and claim with a `pending` row; no money moves (the two-step admission)."""
        async with _claim_races(), self._db_sessions() as session, session.begin():
            return await self._claim(session, request, amount_tyiyn, card)

    async def admit(
        self, request: SessionClaim, amount_tyiyn: int, card: CardClaim | None = None
    ) -> Claimed:
        """Check, claim and reserve in one transaction. An amount that buys no energy at the
        tariff is refused like the ledger's "insufficient funds": nothing is written."""
        async with _claim_races(), self._db_sessions() as session, session.begin():
            claimed = await self._claim(session, request, amount_tyiyn, card, check_limit=True)
            movement = LedgerMovement(
                f"reserve:{request.session_id}",
                request.client_id,
                claimed.reserved_tyiyn,
                request.session_id,
            )
            reserved = await self._ledger.apply_in(session, Operation.RESERVE, movement)
        log_movement(Operation.RESERVE, movement, reserved)
        return claimed

    async def _claim(
        self,
        session: AsyncSession,
        request: SessionClaim,
        amount_tyiyn: int,
        card: CardClaim | None,
        *,
        check_limit: bool = False,
    ) -> Claimed:
        location = await self._directory.locate(
            session, LocateStation(request.station_id, request.connector_id)
        )
        existing = await session.get(ChargingSessionRecord, request.session_id)
        if existing is not None and (card is None or existing.card_id is not None):
            # A retry of an admission that already committed (its reservation with it).
            return Claimed(
                existing.price_tyiyn_per_kwh,
                existing.reserved_tyiyn,
                location.gateway_queue,
                location.max_power_w,
                existing.card_id,
            )
        card_id = await _usable_card(session, request, card) if card is not None else None
        _check_station(request, location, charger_started=card is not None)
        await _check_free(session, request, card_id)
        if card is None:
            _check_connector_status(location.connector_status)
            reserved = amount_tyiyn
        else:
            reserved = min(amount_tyiyn, await _available(session, request, card))
        price = location.price_tyiyn_per_kwh
        if check_limit and (price <= 0 or Tariff(price).energy_limit_wh(reserved) == 0):
            what = "the amount" if card is None else "the balance"
            raise InvalidAmount(f"{what} buys no energy at this tariff")
        await claim_connector(
            session, request, reserved_tyiyn=reserved, price_tyiyn_per_kwh=price, card_id=card_id
        )
        return Claimed(price, reserved, location.gateway_queue, location.max_power_w, card_id)


@asynccontextmanager
async def _claim_races() -> AsyncIterator[None]:
    """A concurrent start that won the connector or the card between our check and our
    claim: the same refusal as if our check had seen it."""
    try:
        yield
    except IntegrityError as exc:
        text = str(exc.orig)
        if "uq_charging_sessions_live_card" in text:
            raise CardInUse("the card is already in a live session") from None
        if "uq_charging_sessions_live_connector" in text:
            raise ConnectorBusy("the connector was just taken by another session") from None
        raise


async def _usable_card(session: AsyncSession, request: SessionClaim, card: CardClaim) -> int:
    found = (
        await session.execute(
            select(RfidCard.id, RfidCard.client_id, RfidCard.blocked_at).where(
                RfidCard.id_tag == card.id_tag
            )
        )
    ).first()
    if found is None or found.client_id != request.client_id or found.blocked_at is not None:
        raise CardNotUsable(f"card {card.id_tag} is not an active card of its owner")
    return int(found.id)


def _check_station(
    request: SessionClaim, location: StationLocation, *, charger_started: bool
) -> None:
    """The station can start a session now. A card start comes from a charger that is there
    and has started already: its connection and connector status are not checked."""
    if not location.known:
        raise StationNotFound(f"station {request.station_id!r} does not exist")
    if location.connector_status is None:
        raise ConnectorNotFound(
            f"station {request.station_id!r} has no connector {request.connector_id}"
        )
    if not location.enabled:
        raise ConnectorUnavailable(f"station {request.station_id!r} is disabled")
    if charger_started:
        return
    if location.gateway_queue is None:
        raise StationOffline(f"station {request.station_id!r} is not connected")


def _check_connector_status(status: str | None) -> None:
    """An app start needs a connector ready for a car (after the live-session check, whose
    answer says more)."""
    if status in OUT_OF_ORDER_STATUSES:
        raise ConnectorUnavailable(f"the connector is {status}")
    if status not in STARTABLE_STATUSES:
        raise ConnectorBusy(f"the connector is {status}")


async def _check_free(session: AsyncSession, request: SessionClaim, card_id: int | None) -> None:
    """No live session holds the connector (or the card): one query for both."""
    on_connector = (ChargingSessionRecord.station_id == request.station_id) & (
        ChargingSessionRecord.connector_id == request.connector_id
    )
    holders = (
        await session.execute(
            select(ChargingSessionRecord.client_id, on_connector.label("on_connector")).where(
                ChargingSessionRecord.state.in_(LIVE_STATE_VALUES),
                or_(on_connector, ChargingSessionRecord.card_id == card_id)
                if card_id is not None
                else on_connector,
            )
        )
    ).all()
    connector_owners = [row.client_id for row in holders if row.on_connector]
    if connector_owners:
        if card_id is None and connector_owners[0] == request.client_id:
            raise AlreadyCharging("you already have a session on this connector")
        raise ConnectorBusy("the connector is in use by another session")
    if holders:
        raise CardInUse("the card is already in a live session")


async def _available(session: AsyncSession, request: SessionClaim, card: CardClaim) -> int:
    """The card owner's available balance, at least the card's minimum."""
    available = await session.scalar(
        select(LedgerAccount.balance_tyiyn).where(
            LedgerAccount.client_id == request.client_id,
            LedgerAccount.kind == AccountKind.AVAILABLE.value,
        )
    )
    available = int(available or 0)
    if available <= 0 or available < card.min_balance_tyiyn:
        raise InsufficientFunds(
            f"{available} tyiyn available, at least {card.min_balance_tyiyn} needed"
        )
    return available
