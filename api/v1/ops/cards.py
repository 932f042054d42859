"""`/ops/cards/{id_tag}/block` and `/unblock`: an operator blocks any client's RFID card (a
stolen card, a dispute) or lets it work again. Authorize answers a blocked card `Blocked`
(gateway/cards.py) from the next request on; the row and its owner are kept."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, update

from api.deps import DbSession
from api.errors import ApiError
from api.openapi import errors
from api.ops_audit import audit_action
from api.v1.ops.access import CurrentOperator
from db.models import RfidCard
from domain.cards import normalise_id_tag

router = APIRouter()

IdTagPath = Annotated[
    str, Path(min_length=1, max_length=64, description="the card's idTag (any case)")
]


class CardAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="why; kept in the audit")


class OpsCard(BaseModel):
    id: int
    id_tag: str
    client_id: str
    label: str
    status: str  # active | blocked
    blocked_at: datetime | None


def _view(card: RfidCard) -> OpsCard:
    return OpsCard(
        id=card.id,
        id_tag=card.id_tag,
        client_id=card.client_id,
        label=card.label,
        status="blocked" if card.blocked_at is not None else "active",
        blocked_at=card.blocked_at,
    )


async def _set_blocked(
    request: Request, db: DbSession, id_tag: str, body: CardAction, *, blocked: bool
) -> OpsCard:
    action = "block" if blocked else "unblock"
    tag = normalise_id_tag(id_tag)
    note = audit_action(request, f"cards.{action}", f"card:{tag or id_tag}", body.reason)
    if tag is None:
        raise ApiError(404, "card_not_found", "no such card")
    # Blocking a blocked card keeps when it was first blocked; unblocking an active one is a
    # no-op as well.
    value = func.coalesce(RfidCard.blocked_at, func.now()) if blocked else None
    card = await db.scalar(
        update(RfidCard).where(RfidCard.id_tag == tag).values(blocked_at=value).returning(RfidCard)
    )
    if card is None:
        raise ApiError(404, "card_not_found", f"no card with idTag {tag}")
    await db.commit()
    view = _view(card)
    note.result = {"client_id": view.client_id, "status": view.status}
    return view


@router.post("/cards/{id_tag}/block", responses=errors(404, 422))
async def block_card(
    id_tag: IdTagPath, body: CardAction, request: Request, db: DbSession, _: CurrentOperator
) -> OpsCard:
    """Block any client's card: the next Authorize with it answers `Blocked`."""
    return await _set_blocked(request, db, id_tag, body, blocked=True)


@router.post("/cards/{id_tag}/unblock", responses=errors(404, 422))
async def unblock_card(
    id_tag: IdTagPath, body: CardAction, request: Request, db: DbSession, _: CurrentOperator
) -> OpsCard:
    """Let a blocked card work again (also one its owner blocked: say why)."""
    return await _set_blocked(request, db, id_tag, body, blocked=False)
