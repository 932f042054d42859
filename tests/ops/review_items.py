"""Sessions and top-ups in `needs_review`, made as their workflows leave them, for the review
queue's tests (API and CLI)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ledger import LedgerMovement
from db.models import ChargingSessionRecord, ProviderTransaction, TopUp
from domain.ledger import Operation
from tests.ops.stack import fund

RESERVED, CAPTURED = 10_000, 3_000


async def session_in_review(
    db_sessions: async_sessionmaker[AsyncSession],
    station_id: str,
    client_id: str,
    *,
    settled: bool = True,
) -> str:
    """A session whose meter readings were implausible: billed the certain part, in review.
    Not `settled`: its settlement failed, the whole reservation is still held."""
    session_id = uuid.uuid4().hex[:12]
    ledger = await fund(db_sessions, 50_000, client_id)
    steps = [(Operation.RESERVE, RESERVED)]
    if settled:
        steps += [(Operation.CAPTURE, CAPTURED), (Operation.RELEASE, RESERVED - CAPTURED)]
    for operation, amount in steps:
        await ledger.apply(
            operation, LedgerMovement(f"{operation}:{session_id}", client_id, amount, session_id)
        )
    async with db_sessions() as session, session.begin():
        session.add(
            ChargingSessionRecord(
                id=session_id,
                client_id=client_id,
                station_id=station_id,
                connector_id=1,
                state="needs_review",
                price_tyiyn_per_kwh=1_500,
                reserved_tyiyn=RESERVED,
                energy_wh=2_000,
                cost_tyiyn=CAPTURED if settled else 0,
                meter_note="implausible_step" if settled else None,
            )
        )
    return session_id


async def topup_in_review(
    db_sessions: async_sessionmaker[AsyncSession], client_id: str, paid_tyiyn: int
) -> str:
    """A top-up of 10 000 tyiyn the provider reported paid with another amount: in review."""
    topup_id = uuid.uuid4().hex[:16]
    await fund(db_sessions, 1, client_id)  # the clients row
    async with db_sessions() as session, session.begin():
        session.add(
            TopUp(
                id=topup_id,
                client_id=client_id,
                method="qr",
                provider="SIMULATED",
                amount_tyiyn=10_000,
                order_id=f"order-{topup_id}",
                state="needs_review",
            )
        )
        await session.flush()
        session.add(
            ProviderTransaction(
                provider="SIMULATED",
                trans_id=f"t-{topup_id}",
                topup_id=topup_id,
                status="review",
                amount_tyiyn=paid_tyiyn,
                currency="KGS",
                review_reason="amount mismatch",
            )
        )
    return topup_id
