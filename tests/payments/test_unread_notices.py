"""Nothing signed is dropped: a notice whose hash verifies but whose fields we cannot interpret
is kept with its raw body, answered 200, audited, re-checked with statusPayment and, unless the
provider confirms a payment, ends in review. Real HTTP webhook, real Temporal, real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.models import LedgerEntry, PaymentAudit, ProviderTransaction
from domain.contracts.topups import recheck_workflow_id, topup_workflow_id
from payments.config import build_provider
from payments.signing import webhook_hash
from tests.payments.live import LiveSystem, live_system
from workflows.reconciliation import RecheckUnreadNotice

pytestmark = pytest.mark.integration


@pytest.fixture
async def live(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[LiveSystem]:
    async with live_system(temporal_env.client, db_sessions) as system:
        yield system


def signed(live: LiveSystem, **fields: str) -> dict[str, str]:
    body = {"site_id": live.config.provider.effective_merchant_id, "test": "1"}
    body.update(fields)
    body["hash"] = webhook_hash(body, live.config.provider.effective_password)
    return body


async def row(live: LiveSystem, trans_id: str) -> ProviderTransaction:
    async with live.db_sessions() as session:
        found = await session.get(ProviderTransaction, ("SIMULATED", trans_id))
    assert found is not None, trans_id
    return found


async def row_status(live: LiveSystem, trans_id: str, want: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = (await row(live, trans_id)).status
        if status == want or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.2)


async def audit_events(live: LiveSystem, trans_id: str) -> list[str]:
    async with live.db_sessions() as session:
        rows = await session.scalars(
            select(PaymentAudit.event)
            .where(PaymentAudit.trans_id == trans_id)
            .order_by(PaymentAudit.id)
        )
        return list(rows)


async def credits(live: LiveSystem, client_id: str) -> list[int]:
    async with live.db_sessions() as session:
        rows = await session.scalars(
            select(LedgerEntry.amount_tyiyn).where(LedgerEntry.client_id == client_id)
        )
        return list(rows)


async def test_a_signed_notice_with_an_unknown_status_code_ends_in_review(
    live: LiveSystem,
) -> None:
    """The other public reading's "-2 expired": the provider's invoice is dead, we cannot read
    the code. The top-up ends in review (not `expired`), the notice is kept whole."""
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 12_000)
    provider = build_provider(live.config.provider)
    try:
        await provider.cancel_invoice(created["invoice_id"])  # the provider's side of "-2"
    finally:
        await provider.aclose()
    trans_id = f"t-{uuid.uuid4().hex[:12]}"
    fields = signed(
        live,
        trans_id=trans_id,
        invoice_id=created["invoice_id"],
        order_id=created["topup_id"],
        status_pay="-2",
        amount="12000",
        currency="KGS",
        mktime="1764000000",
    )

    before = REGISTRY.get_sample_value("evpower_payment_notices_unread_total") or 0.0
    answer = await live.http.post("/api/v1/payment/webhook", json=fields)
    assert answer.status_code == 200, answer.text  # the provider stops retrying
    assert REGISTRY.get_sample_value("evpower_payment_notices_unread_total") == before + 1
    assert answer.json() == {"status": "ok", "routed": "review"}
    again = await live.http.post("/api/v1/payment/webhook", data=fields)  # a retry, as a form
    assert again.status_code == 200

    state = await live.wait_state(client_id, created["topup_id"])
    assert state["state"] == "needs_review"
    assert await row_status(live, trans_id, "review") == "review"
    kept = await row(live, trans_id)
    assert kept.raw_notice == fields  # every field as sent, hash included
    assert kept.topup_id == created["topup_id"]
    assert kept.review_reason and "status_pay '-2'" in kept.review_reason
    assert kept.credited_entry_id is None
    assert await credits(live, client_id) == []
    events = await audit_events(live, trans_id)
    assert events.count("webhook_unreadable") == 2
    assert "notice_in_review" in events


async def test_an_unreadable_notice_for_a_paid_invoice_is_credited_by_status_payment(
    live: LiveSystem,
) -> None:
    """The notice says "7" for a payment the provider's statusPayment reads as approved: the
    workflow re-checks at once and credits it; the kept row becomes the paid transaction."""
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 15_000)
    invoice = await live.simulator.mark_paid(created["invoice_id"])  # no webhook sent
    assert invoice.trans_id is not None
    fields = signed(
        live,
        trans_id=invoice.trans_id,
        invoice_id=invoice.invoice_id,
        order_id=invoice.order_id,
        status_pay="7",
        amount="150.00",  # and som with decimals, for good measure
        currency="KGS",
        mktime="1764000001",
    )
    answer = await live.http.post("/api/v1/payment/webhook", json=fields)
    assert answer.json() == {"status": "ok", "routed": "review"}

    state = await live.wait_state(client_id, created["topup_id"])
    assert state["state"] == "paid"
    assert await credits(live, client_id) == [15_000]
    paid = await row(live, invoice.trans_id)
    assert (paid.status, paid.credited_entry_id is not None) == ("paid", True)
    assert paid.raw_notice == fields


async def test_an_unread_notice_for_an_order_we_do_not_know_goes_to_review_at_once(
    live: LiveSystem,
) -> None:
    """No top-up to ask about: RecheckUnreadNotice hands it to review without waiting for the
    hourly sweep (which would find it `unread` otherwise)."""
    trans_id = f"t-{uuid.uuid4().hex[:12]}"
    fields = signed(
        live,
        trans_id=trans_id,
        order_id="no-such-order",
        status_pay="3",
        amount="a lot",
        currency="KGS",
        mktime="1764000002",
    )
    answer = await live.http.post("/api/v1/payment/webhook", json=fields)
    assert answer.status_code == 200
    handle = live.temporal.get_workflow_handle_for(
        RecheckUnreadNotice.run, recheck_workflow_id(trans_id)
    )
    assert await handle.result() == "needs_review"
    assert (await row(live, trans_id)).status == "review"
    assert await audit_events(live, trans_id) == ["webhook_unreadable", "notice_in_review"]


async def test_a_late_unreadable_notice_for_a_paid_invoice_is_credited_at_once(
    live: LiveSystem,
) -> None:
    """The top-up's workflow is gone (terminated here, as if long expired); the invoice was
    paid; the notice says "9". statusPayment, asked at once, credits the payment."""
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 11_000)
    topup = live.temporal.get_workflow_handle(topup_workflow_id(created["topup_id"]))
    await topup.terminate("the test ends it, as if its invoice had expired long ago")
    invoice = await live.simulator.mark_paid(created["invoice_id"])
    assert invoice.trans_id is not None
    fields = signed(
        live,
        trans_id=invoice.trans_id,
        invoice_id=invoice.invoice_id,
        order_id=invoice.order_id,
        status_pay="9",
        amount="11000",
        currency="KGS",
        mktime="1764000003",
    )
    answer = await live.http.post("/api/v1/payment/webhook", json=fields)
    assert answer.json() == {"status": "ok", "routed": "review"}
    handle = live.temporal.get_workflow_handle_for(
        RecheckUnreadNotice.run, recheck_workflow_id(invoice.trans_id)
    )
    assert await handle.result() == "paid"
    assert await credits(live, client_id) == [11_000]
    paid = await row(live, invoice.trans_id)
    assert (paid.status, paid.credited_entry_id is not None) == ("paid", True)
