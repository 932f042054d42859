"""Authorize from the database: what a charger is told about an idTag it presents.

One query answers it, within the gateway's latency budget and without a workflow: a tag a
RemoteStart handed to this station is a paid session's and is accepted as before; otherwise
the tag is looked up among RFID cards (upper case, domain/cards.py) with the owner's available
balance. Rules, in order:
- a RemoteStart's tag for this station: Accepted;
- no such card (or not an idTag at all): Invalid;
- a blocked card: Blocked;
- an active card whose owner has less than the configured minimum available: Invalid (OCPP
  1.6 has no "insufficient funds"; the charger must not start);
- otherwise Accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocpp.v16.enums import AuthorizationStatus
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.cards import card_lookup_tag
from domain.identifiers import is_id_tag

_STANDING = text(
    """
    SELECT
        EXISTS (SELECT 1 FROM ocpp_remote_starts r
                WHERE r.id_tag = :id_tag AND r.station_id = :station_id) AS session,
        c.id IS NOT NULL AS card,
        c.blocked_at IS NOT NULL AS blocked,
        c.client_id AS client_id,
        c.id_tag AS card_tag,
        COALESCE((SELECT a.balance_tyiyn FROM ledger_accounts a
                  WHERE a.client_id = c.client_id AND a.kind = 'available'), 0) AS available
    FROM (SELECT 1) AS one
    LEFT JOIN rfid_cards c ON c.id_tag = :card_tag
    """
)


@dataclass(frozen=True, slots=True)
class TagStanding:
    session: bool  # a RemoteStart of a paid session gave this station this tag
    card: bool
    blocked: bool
    available_tyiyn: int
    client_id: str | None = None  # the card's owner
    card_tag: str | None = None  # the card's tag as stored


async def tag_standing(engine: AsyncEngine, station_id: str, id_tag: str) -> TagStanding:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                _STANDING,
                {"id_tag": id_tag, "station_id": station_id, "card_tag": card_lookup_tag(id_tag)},
            )
        ).one()
    return TagStanding(
        bool(row.session),
        bool(row.card),
        bool(row.blocked),
        int(row.available),
        row.client_id,
        row.card_tag,
    )


async def card_at_start(engine: AsyncEngine, station_id: str, id_tag: str) -> TagStanding | None:
    """At StartTransaction: the card behind the tag, or None when the tag is a paid session's
    (a RemoteStart to this station) or no card at all (both go the session way: the workflow
    named by the tag answers, or nobody does and the charger is told Invalid)."""
    if not is_id_tag(id_tag):
        return None
    standing = await tag_standing(engine, station_id, id_tag)
    if standing.session or not standing.card:
        return None
    return standing


def verdict(standing: TagStanding, min_balance_tyiyn: int) -> AuthorizationStatus:
    if standing.session:
        return AuthorizationStatus.accepted
    if not standing.card:
        return AuthorizationStatus.invalid
    if standing.blocked:
        return AuthorizationStatus.blocked
    if standing.available_tyiyn < min_balance_tyiyn:
        return AuthorizationStatus.invalid
    return AuthorizationStatus.accepted


async def authorize(
    engine: AsyncEngine, station_id: str, id_tag: str, min_balance_tyiyn: int
) -> AuthorizationStatus:
    """The answer to Authorize; a value that cannot be an idTag is Invalid without a query."""
    if not is_id_tag(id_tag):
        return AuthorizationStatus.invalid
    return verdict(await tag_standing(engine, station_id, id_tag), min_balance_tyiyn)
