"""The review queue as the database holds it: sessions and top-ups in `needs_review`, each with
why it is there and the money a decision can move (read only; decisions are workflows)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    ChargingSessionRecord,
    LedgerEntry,
    PaymentAudit,
    ProviderTransaction,
    TopUp,
)
from domain.review import IN_REVIEW

# A session in review without a meter note got there because its settlement or a step failed
# for good; the workflow's timeline has the detail.
SETTLEMENT_FAILED = "settlement_or_step_failed"


class ReviewItem(BaseModel):
    kind: str  # session | topup
    item_id: str
    client_id: str
    station_id: str | None  # sessions only
    why: str  # the reason the workflow recorded
    created_at: datetime
    updated_at: datetime
    # sessions: what was reserved, billed and captured; a refund gives back at most captured
    reserved_tyiyn: int | None = None
    cost_tyiyn: int | None = None
    captured_tyiyn: int | None = None
    held_tyiyn: int | None = None  # still reserved: no decision releases it (docs)
    # top-ups: what was asked for, and what the provider confirmed and nobody credited
    amount_tyiyn: int | None = None
    confirmed_tyiyn: int | None = None
    provider: str | None = None
    trans_ids: list[str] = []
    decisions: list[str]
    workflow_id: str  # the session's or top-up's own workflow
    temporal_ui_url: str | None
    review_workflow_id: str


def _entry_amount(operation: str) -> ScalarSelect[int]:
    """The amount of the session's settlement entry `{operation}:{session_id}` (NULL: none)."""
    return (
        select(LedgerEntry.amount_tyiyn)
        .where(LedgerEntry.op_key == func.concat(f"{operation}:", ChargingSessionRecord.id))
        .scalar_subquery()
    )


async def sessions_in_review(
    db: AsyncSession, limit: int
) -> list[tuple[ChargingSessionRecord, int, int]]:
    """Sessions in review, oldest first, each with what its settlement captured and what its
    reservation still holds (reserved, neither captured nor released: a failed settlement)."""
    reserved, captured, released = (
        func.coalesce(_entry_amount(operation), 0)
        for operation in ("reserve", "capture", "release")
    )
    rows = await db.execute(
        select(ChargingSessionRecord, captured, reserved - captured - released)
        .where(ChargingSessionRecord.state == IN_REVIEW)
        .order_by(ChargingSessionRecord.updated_at, ChargingSessionRecord.id)
        .limit(limit)
    )
    return [(record, int(taken), int(held)) for record, taken, held in rows.all()]


async def topups_in_review(db: AsyncSession, limit: int) -> list[tuple[TopUp, str, int, list[str]]]:
    """Top-ups in review, oldest first: why (the last review note of the top-up's workflow, or
    of its transactions), the uncredited confirmed amount and the transactions."""
    topups = list(
        await db.scalars(
            select(TopUp)
            .where(TopUp.state == IN_REVIEW)
            .order_by(TopUp.updated_at, TopUp.id)
            .limit(limit)
        )
    )
    found: list[tuple[TopUp, str, int, list[str]]] = []
    for topup in topups:
        note = await db.scalar(
            select(PaymentAudit.details["reason"].astext)
            .where(PaymentAudit.topup_id == topup.id, PaymentAudit.event == "topup_needs_review")
            .order_by(PaymentAudit.id.desc())
            .limit(1)
        )
        transactions = list(
            await db.execute(
                select(
                    ProviderTransaction.trans_id,
                    ProviderTransaction.amount_tyiyn,
                    ProviderTransaction.currency,
                    ProviderTransaction.credited_entry_id,
                    ProviderTransaction.review_reason,
                )
                .where(ProviderTransaction.topup_id == topup.id)
                .order_by(ProviderTransaction.created_at)
            )
        )
        open_ones = [t for t in transactions if t.credited_entry_id is None]
        confirmed = sum(t.amount_tyiyn for t in open_ones if t.currency == topup.currency)
        why = note or next((t.review_reason for t in open_ones if t.review_reason), None)
        found.append((topup, why or "needs_review", confirmed, [t.trans_id for t in open_ones]))
    return found
