"""No confirmed payment is ever dropped: a TopUp settles every notice it received before it
returns (a second trans_id, one landing while it finishes), untrusted notices go to review, and
the Temporal actions a top-up costs, counted from its history."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select
from temporalio import activity
from temporalio.worker import Worker

from activities.ledger import Ledger, LedgerActivities
from activities.topups import FinishTopUpInput, TopUpRecords
from api.v1.topup_client import request_invoice
from db.models import PaymentAudit, ProviderTransaction
from domain.contracts.topups import TopUpInput, topup_workflow_id
from payments.odengi import OdengiClient
from payments.provider import ProviderName
from tests.payments.conftest import Harness, keep_history, paid_notice
from tests.payments.fake_odengi import API_URL, MERCHANT_ID, PASSWORD
from tests.temporal_costs import billed_actions
from worker import payments_worker_parts
from workflows.topup import TopUpWorkflow


async def transactions(harness: Harness, trans_ids: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """trans_id -> (status, credited)"""
    async with harness.db_sessions() as session:
        rows = await session.scalars(
            select(ProviderTransaction).where(ProviderTransaction.trans_id.in_(trans_ids))
        )
        return {row.trans_id: (row.status, row.credited_entry_id is not None) for row in rows}


async def test_two_trans_ids_for_one_order_credit_one_and_review_the_other(
    harness: Harness,
) -> None:
    handle, request = await harness.start(25_000)
    await request_invoice(handle)
    # Both land before the workflow acts: the reviewer's case where the second was lost.
    await asyncio.gather(
        handle.signal(TopUpWorkflow.payment_notified, paid_notice(request, "t-first")),
        handle.signal(TopUpWorkflow.payment_notified, paid_notice(request, "t-second")),
    )
    view = await handle.result()
    assert view.state == "paid"
    paid_by = view.trans_id
    other = "t-second" if paid_by == "t-first" else "t-first"
    assert f"transaction {other} in review" in (view.reason or "")
    assert await transactions(harness, ["t-first", "t-second"]) == {
        paid_by: ("paid", True),
        other: ("review", False),
    }
    entries = await harness.ledger_entries(request.client_id)
    assert [(e.op_key, e.amount_tyiyn) for e in entries] == [(f"topup:{paid_by}", 25_000)]
    assert (await harness.topup_row(request.topup_id)).state == "paid"
    async with harness.db_sessions() as session:
        audited = await session.scalar(
            select(PaymentAudit.details).where(
                PaymentAudit.event == "payment_not_credited", PaymentAudit.trans_id == other
            )
        )
    assert audited is not None and audited["paid_by"] == paid_by
    await keep_history(handle, "topup_two_trans_ids")


async def test_a_webhook_arriving_while_the_expiry_is_recorded_is_credited(
    harness: Harness,
) -> None:
    """invoiceCancel fails, the last statusPayment says unpaid, and the driver's payment lands
    while finish_topup(expired) runs: it used to be accepted (200) and then ignored."""
    harness.fake.faults = {"invoiceCancel": ["503"] * 50}
    records = TopUpRecords(harness.db_sessions)
    client = harness.client
    request = TopUpInput(
        topup_id=uuid.uuid4().hex[:16],
        client_id=str(uuid.uuid4()),
        amount_tyiyn=18_000,
        method="qr",
        provider=ProviderName.ODENGI.value,
    )

    @activity.defn(name="finish_topup")
    async def finish_while_paying(finish: FinishTopUpInput) -> None:
        if finish.state == "expired":
            harness.fake.pay(request.topup_id, "t-last-second")
            await client.get_workflow_handle(topup_workflow_id(request.topup_id)).signal(
                TopUpWorkflow.payment_notified, paid_notice(request, "t-last-second")
            )
        await records.finish_topup(finish)

    provider = OdengiClient(
        name=ProviderName.ODENGI,
        merchant_id=MERCHANT_ID,
        password=PASSWORD,
        api_url=API_URL,
        result_url="https://evpower.test/api/v1/payment/webhook",
        transport=harness.fake.transport(),
    )
    workflows, activities = payments_worker_parts(harness.db_sessions, provider)
    activities = [a for a in activities if getattr(a, "__name__", "") != "finish_topup"]
    task_queue = f"payments-finish-{uuid.uuid4().hex}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=[
            *activities,
            finish_while_paying,
            LedgerActivities(Ledger(harness.db_sessions)).credit_topup,
        ],
    ):
        handle = await client.start_workflow(
            TopUpWorkflow.run,
            request,
            id=topup_workflow_id(request.topup_id),
            task_queue=task_queue,
        )
        view = await handle.result()
    await provider.aclose()
    assert harness.fake.invoices[request.topup_id].status == "approved"  # never cancelled
    assert (view.state, view.trans_id) == ("paid", "t-last-second")
    assert await harness.available(request.client_id) == 18_000
    assert (await harness.topup_row(request.topup_id)).state == "paid"
    events = await harness.audit_events(request.topup_id)
    assert events[-2:] == ["topup_expired", "topup_paid"]
    await keep_history(handle, "topup_webhook_during_expiry")


async def test_an_untrusted_notice_goes_to_review_and_credits_nothing(harness: Harness) -> None:
    handle, request = await harness.start(30_000)
    await request_invoice(handle)
    notice = paid_notice(request, "t-test-flag")
    untrusted = notice.__class__(
        **{**notice.__dict__, "test": True, "untrusted": "a test payment reached a live merchant"}
    )
    await handle.signal(TopUpWorkflow.payment_notified, untrusted)
    view = await handle.result()
    assert view.state == "needs_review"
    assert view.reason == "a test payment reached a live merchant"
    assert await harness.ledger_entries(request.client_id) == []
    assert await transactions(harness, ["t-test-flag"]) == {"t-test-flag": ("review", False)}
    await keep_history(handle, "topup_untrusted")


async def test_a_top_up_costs_8_actions_when_paid_by_webhook_and_15_when_it_expires(
    harness: Harness,
) -> None:
    paid, paid_request = await harness.start(10_000)
    await request_invoice(paid)
    await paid.signal(TopUpWorkflow.payment_notified, paid_notice(paid_request, "t-cost"))
    assert (await paid.result()).state == "paid"
    assert billed_actions(await paid.fetch_history()) == Counter(
        {
            "WORKFLOW_EXECUTION_STARTED": 1,
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED": 1,  # the API waits for the invoice
            "ACTIVITY_TASK_SCHEDULED": 4,  # createInvoice, record, credit, finish
            "TIMER_STARTED": 1,  # the first wait, cut short by the webhook
            "WORKFLOW_EXECUTION_SIGNALED": 1,
        }
    )

    expired, _ = await harness.start(10_000)
    await request_invoice(expired)
    assert (await expired.result()).state == "expired"
    assert billed_actions(await expired.fetch_history()) == Counter(
        {
            "WORKFLOW_EXECUTION_STARTED": 1,
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED": 1,
            # createInvoice, 4 polls (1-4 min), invoiceCancel, the last check, finish
            "ACTIVITY_TASK_SCHEDULED": 8,
            "TIMER_STARTED": 5,  # one per minute of the invoice's life
        }
    )
    await keep_history(expired, "topup_expired")
