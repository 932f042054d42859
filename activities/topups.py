"""Top-up records: claiming a provider transaction for one top-up, final states, what is open.

`record_payment` is where "a trans_id is credited at most once, a top-up is paid by one
trans_id, and a payment in review is never credited automatically" is decided, under row
locks; the ledger's op_key `topup:{trans_id}` is the backstop. Every audit row goes through
`db.payment_audit`, which masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from temporalio import activity

from activities.copy_fields import copy_fields
from activities.metrics import TOPUPS_FINISHED
from db.models import ProviderTransaction, TopUp
from db.payment_audit import write_payment_audit

log = structlog.get_logger(__name__)

RowT = TypeVar("RowT")

OPEN_STATES = ("creating", "awaiting_payment")
# provider_transactions.status; `unread` is a signed notice we could not interpret
RECEIVED, PAID, REVIEW, UNREAD = "received", "paid", "review", "unread"


@dataclass(frozen=True)
class TopUpRef:
    topup_id: str
    client_id: str
    amount_tyiyn: int
    currency: str
    provider: str
    state: str
    invoice_id: str | None = None
    trans_id: str | None = None  # the transaction that paid it, once claimed


@dataclass(frozen=True)
class ReportedPayment:
    """A payment the provider reported: its transaction, what it pays and how much."""

    provider: str
    trans_id: str
    topup_id: str | None
    invoice_id: str | None
    amount_tyiyn: int
    currency: str


@dataclass(frozen=True)
class RecordPaymentInput(ReportedPayment):
    claim: bool  # False records the payment only (mismatch, unmatched): nothing will be credited
    reason: str | None = None  # why it is not claimed, for the audit


@dataclass(frozen=True)
class RecordPaymentResult:
    claimed: bool  # this trans_id is the one that pays the top-up (now or before)
    paid_by: str | None  # the trans_id that holds the top-up when it is not this one
    in_review: bool = False  # the transaction was already sent to review: a human decides


@dataclass(frozen=True)
class FinishTopUpInput:
    topup_id: str
    provider: str
    state: str  # paid | expired | needs_review | failed
    trans_id: str | None = None
    entry_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class FindTopUpInput:
    order_id: str
    invoice_id: str | None = None


@dataclass(frozen=True)
class StaleTopUpsInput:
    older_than_s: int
    limit: int


@dataclass(frozen=True)
class HoldForReviewInput:
    provider: str
    trans_ids: list[str]
    topup_id: str | None
    reason: str


@dataclass(frozen=True)
class UnreadPayment:
    """A signed notice nobody could interpret or settle yet (status `unread`)."""

    provider: str
    trans_id: str
    topup_id: str | None
    invoice_id: str | None
    reason: str


@dataclass(frozen=True)
class UnsettledPayment(ReportedPayment):
    """A reported payment that is neither credited nor in review (e.g. the webhook recorded it
    but could not reach Temporal)."""


async def mark_credited(
    session: AsyncSession, entry_id: int, now: datetime, *which: ColumnElement[bool]
) -> None:
    """The provider transactions `which` are settled by ledger entry `entry_id`: no sweep credits
    them again. One already credited keeps the entry that credited it."""
    await session.execute(
        update(ProviderTransaction)
        .where(*which, ProviderTransaction.credited_entry_id.is_(None))
        .values(credited_entry_id=entry_id, updated_at=now)
    )


def _ref(row: TopUp) -> TopUpRef:
    return copy_fields(TopUpRef, row, topup_id=row.id)


class TopUpRecords:
    """Database side of top-ups. Every method is safe to run twice."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    @activity.defn(name="record_payment")
    async def record_payment(self, request: RecordPaymentInput) -> RecordPaymentResult:
        async with self._db_sessions() as session, session.begin():
            known = await session.scalar(
                select(ProviderTransaction)
                .where(
                    ProviderTransaction.provider == request.provider,
                    ProviderTransaction.trans_id == request.trans_id,
                )
                .with_for_update()
            )
            in_review = known is not None and known.status == REVIEW
            claim = request.claim and not in_review
            paid_by = await self._claim(session, request, claim=claim)
            claimed = claim and paid_by == request.trans_id
            await self._upsert(session, request, PAID if claimed else REVIEW)
            if not claimed:
                reason = request.reason or (
                    "the transaction is in review" if in_review else f"top-up paid by {paid_by}"
                )
                write_payment_audit(
                    session,
                    "payment_not_credited",
                    request.provider,
                    topup_id=request.topup_id,
                    trans_id=request.trans_id,
                    ok=False,
                    details={
                        "amount_tyiyn": request.amount_tyiyn,
                        "currency": request.currency,
                        "paid_by": paid_by,
                        "reason": reason,
                    },
                )
        return RecordPaymentResult(
            claimed=claimed,
            paid_by=paid_by if paid_by != request.trans_id else None,
            in_review=in_review,
        )

    @staticmethod
    async def _claim(
        session: AsyncSession, request: RecordPaymentInput, *, claim: bool
    ) -> str | None:
        """The trans_id that pays the top-up, claiming it for this one if it is still free."""
        if request.topup_id is None:
            return None
        topup = await session.scalar(
            select(TopUp).where(TopUp.id == request.topup_id).with_for_update()
        )
        if topup is None:
            return None
        if claim and topup.trans_id is None:
            topup.trans_id = request.trans_id
        return topup.trans_id

    @staticmethod
    async def _upsert(session: AsyncSession, request: RecordPaymentInput, status: str) -> None:
        """Insert the transaction, or settle the webhook's `received` receipt; a row already
        settled (paid or review) keeps its status."""
        statement = insert(ProviderTransaction).values(
            provider=request.provider,
            trans_id=request.trans_id,
            topup_id=request.topup_id,
            invoice_id=request.invoice_id,
            status=status,
            amount_tyiyn=request.amount_tyiyn,
            currency=request.currency,
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["provider", "trans_id"],
                set_={
                    "status": statement.excluded.status,
                    "topup_id": func.coalesce(
                        ProviderTransaction.topup_id, statement.excluded.topup_id
                    ),
                    "invoice_id": func.coalesce(
                        ProviderTransaction.invoice_id, statement.excluded.invoice_id
                    ),
                    "updated_at": func.now(),
                },
                # An unread notice becomes paid when statusPayment confirms its trans_id.
                where=ProviderTransaction.status.in_((RECEIVED, UNREAD)),
            )
        )

    @activity.defn(name="finish_topup")
    async def finish_topup(self, request: FinishTopUpInput) -> None:
        """Set the final state; `paid` is sticky, so a late review note never un-pays a top-up,
        and so is `reviewed`: an admin has decided (activities/review.py)."""
        now = datetime.now(UTC)
        async with self._db_sessions() as session, session.begin():
            before = await session.scalar(
                select(TopUp.state).where(TopUp.id == request.topup_id).with_for_update()
            )
            await session.execute(
                update(TopUp)
                .where(TopUp.id == request.topup_id, TopUp.state.notin_(("paid", "reviewed")))
                .values(state=request.state, updated_at=now)
            )
            # Counted when the state changes, so a retried activity counts once.
            finished_now = before is not None and before not in {"paid", "reviewed", request.state}
            if request.entry_id is not None and request.trans_id is not None:
                await mark_credited(
                    session,
                    request.entry_id,
                    now,
                    ProviderTransaction.provider == request.provider,
                    ProviderTransaction.trans_id == request.trans_id,
                )
            write_payment_audit(
                session,
                f"topup_{request.state}",
                request.provider,
                topup_id=request.topup_id,
                trans_id=request.trans_id,
                ok=request.state in {"paid", "expired"},
                details={"reason": request.reason, "entry_id": request.entry_id},
            )
        if finished_now:
            TOPUPS_FINISHED.labels(request.state).inc()
        log.info(
            "top-up finished", topup_id=request.topup_id, state=request.state, reason=request.reason
        )

    @activity.defn(name="find_topup")
    async def find_topup(self, request: FindTopUpInput) -> TopUpRef | None:
        async with self._db_sessions() as session:
            row = await session.scalar(select(TopUp).where(TopUp.order_id == request.order_id))
            if row is None and request.invoice_id:
                row = await session.scalar(
                    select(TopUp).where(TopUp.invoice_id == request.invoice_id)
                )
        return _ref(row) if row is not None else None

    @activity.defn(name="stale_topups")
    async def stale_topups(self, request: StaleTopUpsInput) -> list[TopUpRef]:
        """Open top-ups past their life, least recently checked first, marked as checked now:
        ones the provider never resolves go to the back of the line instead of blocking it."""
        now = datetime.now(UTC)
        oldest_first = (
            select(TopUp)
            .where(
                TopUp.state.in_(OPEN_STATES),
                TopUp.created_at < now - timedelta(seconds=request.older_than_s),
            )
            .order_by(TopUp.checked_at.asc().nulls_first(), TopUp.created_at, TopUp.id)
        )
        rows = await self._take_page(oldest_first, TopUp.checked_at, request.limit, now)
        return [_ref(row) for row in rows]

    @activity.defn(name="unsettled_payments")
    async def unsettled_payments(self, request: StaleTopUpsInput) -> list[UnsettledPayment]:
        """Reported payments neither credited nor in review."""
        rows = await self._take_transactions(
            request,
            ProviderTransaction.credited_entry_id.is_(None),
            ProviderTransaction.status.not_in((REVIEW, UNREAD)),
        )
        return [copy_fields(UnsettledPayment, row) for row in rows]

    @activity.defn(name="unread_notices")
    async def unread_notices(self, request: StaleTopUpsInput) -> list[UnreadPayment]:
        """Signed notices kept unread."""
        rows = await self._take_transactions(request, ProviderTransaction.status == UNREAD)
        return [
            copy_fields(UnreadPayment, row, reason=row.review_reason or "unreadable notice")
            for row in rows
        ]

    async def _take_transactions(
        self, request: StaleTopUpsInput, *conditions: ColumnElement[bool]
    ) -> list[ProviderTransaction]:
        """Provider transactions matching `conditions` and older than the page's age."""
        now = datetime.now(UTC)
        oldest_first = (
            select(ProviderTransaction)
            .where(
                *conditions,
                ProviderTransaction.created_at < now - timedelta(seconds=request.older_than_s),
            )
            .order_by(ProviderTransaction.updated_at, ProviderTransaction.trans_id)
        )
        return await self._take_page(
            oldest_first, ProviderTransaction.updated_at, request.limit, now
        )

    async def _take_page(
        self,
        least_recently_looked_at: Select[RowT],
        looked_at: InstrumentedAttribute[Any],
        limit: int,
        now: datetime,
    ) -> list[RowT]:
        """The first `limit` rows of the query, marked as looked at `now`: one the sweep keeps
        failing on goes to the back of the line instead of holding the others back, and a
        concurrent sweep skips the rows this one holds."""
        async with self._db_sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    least_recently_looked_at.limit(limit).with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                setattr(row, looked_at.key, now)
            return rows

    @activity.defn(name="hold_for_review")
    async def hold_for_review(self, request: HoldForReviewInput) -> int:
        """Unread notices that statusPayment did not turn into a payment go to review (a row
        settled meanwhile keeps its status). Returns how many moved."""
        async with self._db_sessions() as session, session.begin():
            moved = list(
                await session.scalars(
                    update(ProviderTransaction)
                    .where(
                        ProviderTransaction.provider == request.provider,
                        ProviderTransaction.trans_id.in_(request.trans_ids),
                        ProviderTransaction.status == UNREAD,
                    )
                    .values(status=REVIEW, updated_at=func.now())
                    .returning(ProviderTransaction.trans_id)
                )
            )
            for trans_id in moved:
                write_payment_audit(
                    session,
                    "notice_in_review",
                    request.provider,
                    topup_id=request.topup_id,
                    trans_id=trans_id,
                    ok=False,
                    details={"reason": request.reason},
                )
        return len(moved)
