"""The host-to-host card charge, run by the TopUp workflow: the card is forwarded to the
provider at most once per top-up, because reading it deletes it.

The API sealed the card into `card_charges` (payments/card_vault.py) and handed the key to
the workflow. This activity deletes the row and reads it in one statement and commits before
it calls the provider: a retry of the activity, a second request or a second worker finds no
card and forwards nothing. A charge whose answer was lost is `unknown`, never resent: the
provider's webhook (or the workflow's statusPayment poll) says whether the money came.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import CardCharge
from db.payment_audit import write_payment_audit
from domain.contracts.topups import CardOutcome
from payments.card_vault import SealBroken, unseal
from payments.provider import H2HNotConfigured, PaymentProvider, ProviderError

log = structlog.get_logger(__name__)

CHARGE_CARD = "charge_card"


@dataclass(frozen=True)
class ChargeCardInput:
    topup_id: str
    invoice_id: str
    ref: str  # which sealed card (the request that reached the workflow first)
    key: str  # opens it; useless once the row is gone


class CardChargeActivities:
    def __init__(
        self, db_sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
    ) -> None:
        self._db_sessions = db_sessions
        self._provider = provider

    @activity.defn(name=CHARGE_CARD)
    async def charge_card(self, request: ChargeCardInput) -> CardOutcome:
        provider = self._provider.name.value
        async with self._db_sessions() as session, session.begin():
            sealed = await session.scalar(
                delete(CardCharge)
                .where(CardCharge.topup_id == request.topup_id, CardCharge.ref == request.ref)
                .returning(CardCharge.sealed)
            )
            # Cards of duplicate requests for the same top-up are never charged: drop them.
            await session.execute(delete(CardCharge).where(CardCharge.topup_id == request.topup_id))
            if sealed is None:
                return CardOutcome(
                    "already_submitted", "this top-up's card payment was already submitted"
                )
            try:
                card = unseal(sealed, request.key, request.topup_id)
            except SealBroken:
                return CardOutcome("declined", "the card data could not be read; nothing charged")
            write_payment_audit(
                session,
                "h2h_forwarded",
                provider,
                topup_id=request.topup_id,
                details=card.audit_view(),
            )
        # Committed: the card is gone from the database before the provider sees it.
        try:
            result = await self._provider.pay_card(request.invoice_id, card)
        except H2HNotConfigured:
            return CardOutcome("declined", "host-to-host card payments are not configured")
        except ProviderError as exc:
            await self._audit("h2h_unknown", request.topup_id, ok=False, details=card.audit_view())
            log.warning("card charge outcome unknown", topup_id=request.topup_id, error=str(exc))
            return CardOutcome(
                "unknown",
                "the card payment's outcome is unknown; the top-up completes by itself if the "
                "charge went through",
            )
        await self._audit(
            "h2h_accepted" if result.accepted else "h2h_declined",
            request.topup_id,
            ok=result.accepted,
            details={**card.audit_view(), "message": result.message},
        )
        return CardOutcome("accepted" if result.accepted else "declined", result.message)

    async def _audit(
        self, event: str, topup_id: str, *, ok: bool, details: dict[str, object]
    ) -> None:
        async with self._db_sessions() as session, session.begin():
            write_payment_audit(
                session, event, self._provider.name.value, topup_id=topup_id, ok=ok, details=details
            )
