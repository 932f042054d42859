"""`/cards`: RFID cards a client links to the account, lists and blocks.

Everything runs in the client's row-level-security scope: another client's card is invisible
(its id answers 404), yet the unique idTag still refuses a second owner (409 `card_taken`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.auth import CurrentClient
from api.client_db import ClientDb
from api.errors import ApiError
from api.openapi import AUTHENTICATED, IDEMPOTENT, errors
from db.models import RfidCard
from domain.cards import LABEL_MAX_LENGTH, normalise_id_tag
from domain.identifiers import BIGINT_MAX, has_control_characters

router = APIRouter(prefix="/cards", tags=["cards"])


class LinkCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # As printed on the card; stored upper case without spaces (must then be an OCPP idTag:
    # 1-20 printable ASCII characters).
    id_tag: str = Field(min_length=1, max_length=64)
    label: str = Field(default="", max_length=LABEL_MAX_LENGTH)


class Card(BaseModel):
    id: int
    id_tag: str
    label: str
    status: str  # "active" | "blocked"
    created_at: datetime
    blocked_at: datetime | None


class CardList(BaseModel):
    items: list[Card]


def _view(card: RfidCard) -> Card:
    return Card(
        id=card.id,
        id_tag=card.id_tag,
        label=card.label,
        status="blocked" if card.blocked_at is not None else "active",
        created_at=card.created_at,
        blocked_at=card.blocked_at,
    )


@router.post("", status_code=201, responses={**IDEMPOTENT, **AUTHENTICATED})
async def link_card(body: LinkCard, client: CurrentClient, db: ClientDb) -> Card:
    """Link a card: Authorize at a charger accepts it from then on (balance permitting)."""
    id_tag = normalise_id_tag(body.id_tag)
    if id_tag is None:
        raise ApiError(
            422, "invalid_id_tag", "id_tag must be 1-20 printable ASCII characters (spaces ignored)"
        )
    if has_control_characters(body.label):
        raise ApiError(422, "invalid_label", "label must not hold control characters")
    # The unique index sees every client's rows, RLS or not: a tag owned elsewhere is skipped.
    inserted = await db.scalar(
        pg_insert(RfidCard)
        .values(client_id=client.client_id, id_tag=id_tag, label=body.label)
        .on_conflict_do_nothing(index_elements=["id_tag"])
        .returning(RfidCard.id)
    )
    if inserted is None:
        own = await db.scalar(select(RfidCard.id).where(RfidCard.id_tag == id_tag))
        if own is not None:
            raise ApiError(409, "card_exists", "this card is already linked to your account")
        raise ApiError(409, "card_taken", "this card is linked to another account")
    card = await db.get_one(RfidCard, inserted)
    return _view(card)


@router.get("", responses=AUTHENTICATED)
async def list_cards(client: CurrentClient, db: ClientDb) -> CardList:
    """The account's cards, blocked ones included, newest first."""
    cards = await db.scalars(
        select(RfidCard).where(RfidCard.client_id == client.client_id).order_by(RfidCard.id.desc())
    )
    return CardList(items=[_view(card) for card in cards])


# The id as digits (a string path parameter with a pattern, like the other ids in paths);
# beyond the BIGINT range it names no card.
CardId = Annotated[
    str, Path(pattern=r"^[0-9]{1,19}$", max_length=19, description="a card's `id`, in digits")
]


@router.delete("/{card_id}", status_code=204, responses={**AUTHENTICATED, **errors(404)})
async def block_card(card_id: CardId, client: CurrentClient, db: ClientDb) -> Response:
    """Block the card at once (the next Authorize answers `Blocked`); the row is kept, and
    blocking a blocked card again changes nothing."""
    number = int(card_id)
    found = None
    if 0 < number <= BIGINT_MAX:
        found = await db.scalar(
            update(RfidCard)
            .where(RfidCard.id == number, RfidCard.client_id == client.client_id)
            .values(blocked_at=func.coalesce(RfidCard.blocked_at, func.now()))
            .returning(RfidCard.id)
        )
    if found is None:
        raise ApiError(404, "card_not_found", "no such card")
    return Response(status_code=204)
