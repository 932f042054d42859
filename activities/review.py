"""The Review workflow's database side: what a decision on an item in review would move (or why
it is refused), and recording the resolution once the money has moved.

`plan_review` only reads; `record_review` writes the resolution and moves the item's row out of
`needs_review` in one transaction. Both are safe to run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.copy_fields import copy_fields
from activities.topups import RECEIVED, REVIEW, UNREAD, mark_credited
from db.models import (
    ChargingSessionRecord,
    LedgerEntry,
    ProviderTransaction,
    ReviewResolution,
    TopUp,
)
from db.payment_audit import write_payment_audit
from domain.contracts.review import ReviewRequest, ReviewResult
from domain.errors import DomainError
from domain.ledger import Operation
from domain.review import (
    IN_REVIEW,
    RESOLVED,
    AlreadyResolved,
    AmountRequired,
    Decision,
    NothingToRefund,
    NothingToRelease,
    NotInReview,
    RefundExceedsCapture,
    ReleaseExceedsHeld,
    ReviewItemNotFound,
    ReviewKind,
    check_decision,
    review_op_key,
)

log = structlog.get_logger(__name__)

PLAN_REVIEW = "plan_review"
RECORD_REVIEW = "record_review"


@dataclass(frozen=True)
class ReviewPlan:
    """What the decision does: `move` (a ledger activity), `close`, `done` (it was resolved
    so already: `previous`) or `refused` (`code`, `message`)."""

    outcome: str
    client_id: str = ""
    operation: str | None = None  # the ledger activity: credit_topup | refund
    amount_tyiyn: int = 0
    provider: str | None = None
    op_key: str | None = None
    code: str | None = None
    message: str = ""
    previous: ReviewResult | None = None


@dataclass(frozen=True)
class ReviewRecord:
    request: ReviewRequest
    client_id: str
    amount_tyiyn: int
    entry_id: int | None
    op_key: str | None
    workflow_id: str


def _result(row: ReviewResolution, *, replayed: bool) -> ReviewResult:
    return copy_fields(ReviewResult, row, outcome="resolved", replayed=replayed)


def _refused(exc: DomainError) -> ReviewPlan:
    return ReviewPlan("refused", code=exc.code, message=exc.message)


async def captured_tyiyn(session: AsyncSession, session_id: str) -> int:
    """What the session's settlement moved to revenue (0 when nothing was captured)."""
    amount = await session.scalar(
        select(LedgerEntry.amount_tyiyn).where(LedgerEntry.op_key == f"capture:{session_id}")
    )
    return int(amount or 0)


async def held_tyiyn(session: AsyncSession, session_id: str) -> int:
    """What the session's reservation still holds: reserved, neither captured nor released."""
    rows = await session.execute(
        select(LedgerEntry.operation, LedgerEntry.amount_tyiyn).where(
            LedgerEntry.op_key.in_(
                [f"{operation}:{session_id}" for operation in ("reserve", "capture", "release")]
            )
        )
    )
    amounts = {operation: amount for operation, amount in rows.all()}
    return amounts.get("reserve", 0) - amounts.get("capture", 0) - amounts.get("release", 0)


async def confirmed_tyiyn(session: AsyncSession, topup: TopUp) -> int:
    """What the provider reported paid for the top-up and nobody credited yet."""
    total = await session.scalar(
        select(func.coalesce(func.sum(ProviderTransaction.amount_tyiyn), 0)).where(
            ProviderTransaction.provider == topup.provider,
            ProviderTransaction.topup_id == topup.id,
            ProviderTransaction.credited_entry_id.is_(None),
            ProviderTransaction.currency == topup.currency,
        )
    )
    return int(total or 0)


async def _item_in_review(
    session: AsyncSession, kind: ReviewKind, item_id: str
) -> ChargingSessionRecord | TopUp:
    """The session or top-up row a decision is about; only one in review can be decided."""
    item: ChargingSessionRecord | TopUp | None
    if kind is ReviewKind.SESSION:
        item, noun = await session.get(ChargingSessionRecord, item_id), "charging session"
    else:
        item, noun = await session.get(TopUp, item_id), "top-up"
    if item is None:
        raise ReviewItemNotFound(f"no {noun} {item_id!r}")
    if item.state != IN_REVIEW:
        raise NotInReview(f"{kind} {item_id} is {item.state}, not {IN_REVIEW}")
    return item


async def _session_move(
    session: AsyncSession, request: ReviewRequest, client_id: str, decision: Decision
) -> ReviewPlan:
    """A refund gives back at most what the session's settlement captured; a release frees at
    most what its reservation still holds (a settlement that failed). Without an amount the
    decision moves all of it."""
    refund = decision is Decision.REFUND
    if refund:
        available = await captured_tyiyn(session, request.item_id)
        nothing: DomainError = NothingToRefund(f"session {request.item_id} captured nothing")
    else:
        available = await held_tyiyn(session, request.item_id)
        nothing = NothingToRelease(f"session {request.item_id} holds nothing")
    if available <= 0:
        raise nothing
    amount = request.amount_tyiyn if request.amount_tyiyn is not None else available
    if amount > available:
        if refund:
            raise RefundExceedsCapture(
                f"a refund of {amount} tyiyn exceeds the {available} tyiyn captured"
            )
        raise ReleaseExceedsHeld(f"a release of {amount} tyiyn exceeds the {available} tyiyn held")
    operation = Operation.REFUND if refund else Operation.RELEASE
    return ReviewPlan(
        "move",
        client_id,
        operation.value,
        amount,
        op_key=review_op_key(ReviewKind.SESSION, request.item_id, decision),
    )


class ReviewActivities:
    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    def activities(self) -> list[Callable[..., Any]]:
        return [self.plan_review, self.record_review]

    @activity.defn(name=PLAN_REVIEW)
    async def plan_review(self, request: ReviewRequest) -> ReviewPlan:
        async with self._db_sessions() as session:
            done = await session.get(ReviewResolution, (request.kind, request.item_id))
            if done is not None:
                if done.decision == request.decision and request.amount_tyiyn in {
                    None,
                    done.amount_tyiyn,
                }:
                    return ReviewPlan(
                        "done", client_id=done.client_id, previous=_result(done, replayed=True)
                    )
                return _refused(
                    AlreadyResolved(
                        f"{request.kind} {request.item_id} was resolved with {done.decision} "
                        f"of {done.amount_tyiyn} tyiyn by {done.operator}"
                    )
                )
            try:
                return await self._plan(session, request)
            except DomainError as exc:
                return _refused(exc)

    async def _plan(self, session: AsyncSession, request: ReviewRequest) -> ReviewPlan:
        kind, decision = ReviewKind(request.kind), Decision(request.decision)
        check_decision(kind, decision, request.amount_tyiyn)
        item = await _item_in_review(session, kind, request.item_id)
        if decision is Decision.CLOSE:
            return ReviewPlan("close", client_id=item.client_id)
        if isinstance(item, ChargingSessionRecord):
            return await _session_move(session, request, item.client_id, decision)
        topup = item
        amount = request.amount_tyiyn
        if amount is None:
            amount = await confirmed_tyiyn(session, topup)
            if amount == 0:
                raise AmountRequired(
                    f"the provider confirmed no payment for top-up {request.item_id}: "
                    "send amount_tyiyn"
                )
        return ReviewPlan(
            "move",
            topup.client_id,
            Operation.CREDIT_TOPUP.value,
            amount,
            provider=topup.provider,
            op_key=review_op_key(kind, request.item_id, decision),
        )

    @activity.defn(name=RECORD_REVIEW)
    async def record_review(self, record: ReviewRecord) -> ReviewResult:
        request, now = record.request, datetime.now(UTC)
        async with self._db_sessions() as session, session.begin():
            await session.execute(
                insert(ReviewResolution)
                .values(
                    kind=request.kind,
                    item_id=request.item_id,
                    client_id=record.client_id,
                    decision=request.decision,
                    amount_tyiyn=record.amount_tyiyn,
                    entry_id=record.entry_id,
                    op_key=record.op_key,
                    operator=request.operator,
                    reason=request.reason,
                    workflow_id=record.workflow_id,
                )
                .on_conflict_do_nothing(index_elements=["kind", "item_id"])
            )
            if request.kind == ReviewKind.SESSION:
                await session.execute(
                    update(ChargingSessionRecord)
                    .where(
                        ChargingSessionRecord.id == request.item_id,
                        ChargingSessionRecord.state == IN_REVIEW,
                    )
                    .values(state=RESOLVED, updated_at=now)
                )
            else:
                await self._resolve_topup(session, record, now)
            row = await session.get(ReviewResolution, (request.kind, request.item_id))
        assert row is not None
        log.info(
            "review resolved",
            kind=request.kind,
            item_id=request.item_id,
            decision=row.decision,
            amount_tyiyn=row.amount_tyiyn,
            operator=row.operator,
        )
        return _result(row, replayed=False)

    async def _resolve_topup(
        self, session: AsyncSession, record: ReviewRecord, now: datetime
    ) -> None:
        request = record.request
        topup = await session.get(TopUp, request.item_id, with_for_update=True)
        if topup is None:
            return
        if topup.state == IN_REVIEW:
            topup.state, topup.updated_at = RESOLVED, now
        if record.entry_id is not None:
            # The credit settles everything the provider reported for the top-up.
            await mark_credited(
                session,
                record.entry_id,
                now,
                ProviderTransaction.provider == topup.provider,
                ProviderTransaction.topup_id == topup.id,
            )
        # A human decided: a retried webhook or a recheck of a transaction not settled yet
        # (received, unread) must not credit it on its own now (record_payment never credits
        # one in review).
        await session.execute(
            update(ProviderTransaction)
            .where(
                ProviderTransaction.topup_id == topup.id,
                ProviderTransaction.status.in_((RECEIVED, UNREAD)),
            )
            .values(status=REVIEW, updated_at=now)
        )
        write_payment_audit(
            session,
            "topup_review_resolved",
            topup.provider,
            topup_id=topup.id,
            details={
                "decision": request.decision,
                "amount_tyiyn": record.amount_tyiyn,
                "entry_id": record.entry_id,
                "operator": request.operator,
                "reason": request.reason,
            },
        )
