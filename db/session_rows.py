"""Reads and writes of `charging_sessions` that more than one caller shares."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.clients import ensure_client
from db.models import ChargingSessionRecord
from domain.contracts.session_record import SessionRecord
from domain.sessions import SessionState
from domain.tariff import Tariff


class Claimant(Protocol):
    """Who claims which connector: an app start's or a card start's admission request."""

    @property
    def session_id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def station_id(self) -> str: ...
    @property
    def connector_id(self) -> int: ...


async def own_session_row(
    session: AsyncSession, client_id: str, session_id: str
) -> ChargingSessionRecord | None:
    """The client's own session row; None for an unknown one and for someone else's alike (the
    client filter stands even where row-level security does not)."""
    row: ChargingSessionRecord | None = await session.scalar(
        select(ChargingSessionRecord).where(
            ChargingSessionRecord.id == session_id,
            ChargingSessionRecord.client_id == client_id,
        )
    )
    return row


async def claim_connector(
    session: AsyncSession,
    claimant: Claimant,
    *,
    reserved_tyiyn: int,
    price_tyiyn_per_kwh: int,
    card_id: int | None = None,
) -> None:
    """Write the `pending` row that claims the connector (and the card, for a card start) in
    the caller's transaction; the partial unique indexes on live sessions make the claim atomic.
    The row carries the tariff snapshot and the energy limit that amount buys at it. A retried
    admission whose row exists changes nothing."""
    await ensure_client(session, claimant.client_id)
    pending = SessionRecord(
        session_id=claimant.session_id,
        client_id=claimant.client_id,
        station_id=claimant.station_id,
        connector_id=claimant.connector_id,
        state=SessionState.PENDING.value,
        reserved_tyiyn=reserved_tyiyn,
        price_tyiyn_per_kwh=price_tyiyn_per_kwh,
    )
    if price_tyiyn_per_kwh > 0:  # else the workflow refuses the start
        limit = Tariff(price_tyiyn_per_kwh).energy_limit_wh(reserved_tyiyn)
        pending = replace(pending, energy_limit_wh=limit)
    await session.execute(
        insert(ChargingSessionRecord)
        .values({**ChargingSessionRecord.values_of(pending), "card_id": card_id})
        .on_conflict_do_nothing(index_elements=[ChargingSessionRecord.id])
    )
