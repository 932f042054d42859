"""Top-up records: claiming a provider transaction for one top-up, final states, the audit.

`record_payment` is where "a trans_id is credited at most once, and a top-up is paid by one
trans_id" is decided, under row locks; the ledger's op_key `topup:{trans_id}` is the backstop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import PaymentAudit, ProviderTransaction, TopUp

log = structlog.get_logger(__name__)

OPEN_STATES = ("creating", "awaiting_payment")
_SECRET_KEYS = frozenset({"hash", "card_number", "cvc", "cvv", "password", "token"})


def masked(details: dict[str, Any]) -> dict[str, Any]:
    """Audit rows never hold hashes, card data or tokens, whatever a caller passes."""
    return {key: ("***" if key in _SECRET_KEYS else value) for key, value in details.items()}


async def write_audit(
    session: AsyncSession,
    event: str,
    provider: str,
    *,
    topup_id: str | None = None,
    trans_id: str | None = None,
    ok: bool = True,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        PaymentAudit(
            event=event,
            provider=provider,
            topup_id=topup_id,
            trans_id=trans_id,
            ok=ok,
            details=masked(details or {}),
            at=datetime.now(UTC),
        )
    )


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
class RecordPaymentInput:
    provider: str
    trans_id: str
    topup_id: str | None
    invoice_id: str | None
    amount_tyiyn: int
    currency: str
    claim: bool  # False records the payment only (mismatch, unmatched): nothing will be credited


@dataclass(frozen=True)
class RecordPaymentResult:
    claimed: bool  # this trans_id is the one that pays the top-up (now or before)
    paid_by: str | None  # the trans_id that holds the top-up when it is not this one


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


def _ref(row: TopUp) -> TopUpRef:
    return TopUpRef(
        topup_id=row.id,
        client_id=row.client_id,
        amount_tyiyn=row.amount_tyiyn,
        currency=row.currency,
        provider=row.provider,
        state=row.state,
        invoice_id=row.invoice_id,
        trans_id=row.trans_id,
    )


class TopUpRecords:
    """Database side of top-ups. Every method is safe to run twice."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="record_payment")
    async def record_payment(self, request: RecordPaymentInput) -> RecordPaymentResult:
        async with self._sessions() as session, session.begin():
            paid_by: str | None = None
            if request.topup_id is not None and request.claim:
                topup = await session.scalar(
                    select(TopUp).where(TopUp.id == request.topup_id).with_for_update()
                )
                if topup is not None:
                    if topup.trans_id is None:
                        topup.trans_id = request.trans_id
                    paid_by = topup.trans_id
            status = "paid" if request.claim else "review"
            await session.execute(
                insert(ProviderTransaction)
                .values(
                    provider=request.provider,
                    trans_id=request.trans_id,
                    topup_id=request.topup_id,
                    invoice_id=request.invoice_id,
                    status=status,
                    amount_tyiyn=request.amount_tyiyn,
                    currency=request.currency,
                )
                .on_conflict_do_nothing(index_elements=["provider", "trans_id"])
            )
            claimed = request.claim and paid_by == request.trans_id
            if not claimed:
                await write_audit(
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
                    },
                )
        return RecordPaymentResult(
            claimed=claimed, paid_by=paid_by if paid_by != request.trans_id else None
        )

    @activity.defn(name="finish_topup")
    async def finish_topup(self, request: FinishTopUpInput) -> None:
        """Set the final state; `paid` is sticky, so a late review note never un-pays a top-up."""
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(TopUp)
                .where(TopUp.id == request.topup_id, TopUp.state != "paid")
                .values(state=request.state, updated_at=now)
            )
            if request.entry_id is not None and request.trans_id is not None:
                await session.execute(
                    update(ProviderTransaction)
                    .where(
                        ProviderTransaction.provider == request.provider,
                        ProviderTransaction.trans_id == request.trans_id,
                        ProviderTransaction.credited_entry_id.is_(None),
                    )
                    .values(credited_entry_id=request.entry_id, updated_at=now)
                )
            await write_audit(
                session,
                f"topup_{request.state}",
                request.provider,
                topup_id=request.topup_id,
                trans_id=request.trans_id,
                ok=request.state in {"paid", "expired"},
                details={"reason": request.reason, "entry_id": request.entry_id},
            )
        log.info(
            "top-up finished", topup_id=request.topup_id, state=request.state, reason=request.reason
        )

    @activity.defn(name="find_topup")
    async def find_topup(self, request: FindTopUpInput) -> TopUpRef | None:
        async with self._sessions() as session:
            row = await session.scalar(select(TopUp).where(TopUp.order_id == request.order_id))
            if row is None and request.invoice_id:
                row = await session.scalar(
                    select(TopUp).where(TopUp.invoice_id == request.invoice_id)
                )
        return _ref(row) if row is not None else None

    @activity.defn(name="stale_topups")
    async def stale_topups(self, request: StaleTopUpsInput) -> list[TopUpRef]:
        cutoff = datetime.now(UTC) - timedelta(seconds=request.older_than_s)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(TopUp)
                .where(TopUp.state.in_(OPEN_STATES), TopUp.created_at < cutoff)
                .order_by(TopUp.created_at)
                .limit(request.limit)
            )
            return [_ref(row) for row in rows]
