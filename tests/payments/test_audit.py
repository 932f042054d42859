"""The one payment-audit writer masks card numbers, tokens and hashes whatever a caller passes."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import PaymentAudit
from db.payment_audit import masked, write_payment_audit
from payments.signing import webhook_hash

PAN = "4111111111111111"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def test_secrets_are_masked_by_key_and_by_look() -> None:
    digest = webhook_hash({"trans_id": "1"}, "pw")
    details = {
        "hash": "anything",
        "cvc": "123",
        "card_number": PAN,
        "message": f"card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]} declined, sign {digest}",
        "headers": {"Authorization": f"Bearer {JWT}"},
        "notes": [f"token {JWT}"],
        "invoice_id": "4111111111111111",  # an id, even one that passes Luhn, stays readable
        "amount_tyiyn": 1_000,
        "phone": "996555123456",  # not a card number
    }
    clean = masked(details)
    text = json.dumps(clean)
    assert PAN not in text.replace(clean["invoice_id"], "")
    assert digest not in text and JWT not in text and "123" not in clean["cvc"]
    assert clean["hash"] == clean["card_number"] == "***"
    assert "411111******1111 declined" in clean["message"]
    assert clean["headers"] == {"Authorization": "***"}
    assert clean["notes"] == ["token ***"]
    assert clean["invoice_id"] == PAN and clean["amount_tyiyn"] == 1_000
    assert clean["phone"] == "996555123456"


async def test_rows_are_written_masked(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    async with db_sessions() as session, session.begin():
        write_payment_audit(
            session,
            "h2h_declined",
            "SIMULATED",
            topup_id="t1",
            ok=False,
            details={"message": f"bank says no to {PAN}", "token": "secret-token"},
        )
    async with db_sessions() as session:
        details = await session.scalar(select(PaymentAudit.details))
    assert details == {"message": "bank says no to 411111******1111", "token": "***"}
