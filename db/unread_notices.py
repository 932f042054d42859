"""Keeping a signed notice we could not interpret: one `provider_transactions` row with its raw
body, status `unread` until statusPayment settles it (paid) or a workflow hands it to review."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ProviderTransaction

UNREAD = "unread"


async def record_unread_notice(
    session: AsyncSession,
    *,
    provider: str,
    trans_id: str,
    topup_id: str | None,
    invoice_id: str | None,
    amount_tyiyn: int | None,
    currency: str,
    raw: dict[str, str],
    reason: str,
) -> None:
    """Insert the row (the caller commits). A transaction already on record keeps its status
    (a credited payment stays credited) but gains the notice and the reason, for a human."""
    statement = insert(ProviderTransaction).values(
        provider=provider,
        trans_id=trans_id,
        topup_id=topup_id,
        invoice_id=invoice_id,
        status=UNREAD,
        # Unknown when the amount itself was unreadable; the raw body keeps what was sent.
        amount_tyiyn=amount_tyiyn or 0,
        currency=currency[:3],
        raw_notice=raw,
        review_reason=reason[:300],
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["provider", "trans_id"],
            set_={
                "raw_notice": statement.excluded.raw_notice,
                "review_reason": statement.excluded.review_reason,
            },
        )
    )
