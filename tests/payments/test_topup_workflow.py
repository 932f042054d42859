"""TopUp and reconciliation workflows in the time-skipping server, with the real activities on
the real database and a stand-in O!Dengi: one credit per payment, whatever the provider does."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.dialects.postgresql import insert
from temporalio.client import WorkflowUpdateFailedError

from api.v1.topup_client import request_invoice
from db.models import Client as ClientRow
from db.models import ProviderTransaction
from db.models import TopUp as TopUpRow
from payments.provider import PaymentNotice, PayStatus, UnreadNotice
from tests.payments.conftest import Harness, keep_history, paid_notice
from workflows.reconciliation import (
    PaymentReconciliation,
    RecheckInput,
    RecheckUnreadNotice,
    ReconcileInput,
    ReconcileStaleTopUps,
    SweepInput,
)
from workflows.topup import TopUpWorkflow


async def test_paid_webhook_credits_the_amount(harness: Harness) -> None:
    handle, request = await harness.start(25_000)
    invoice = await request_invoice(handle)
    assert invoice.invoice_id == harness.fake.invoices[request.topup_id].invoice_id
    harness.fake.pay(request.topup_id, "t-1")
    await handle.signal(TopUpWorkflow.payment_notified, paid_notice(request, "t-1"))
    view = await handle.result()
    assert (view.state, view.trans_id) == ("paid", "t-1")
    assert await harness.available(request.client_id) == 25_000
    row = await harness.topup_row(request.topup_id)
    assert (row.state, row.trans_id, row.invoice_id) == ("paid", "t-1", invoice.invoice_id)
    assert await harness.count(ProviderTransaction, trans_id="t-1") == 1
    await keep_history(handle, "topup_paid_by_webhook")


async def test_webhook_replayed_ten_times_while_the_poll_also_sees_it_credits_once(
    harness: Harness,
) -> None:
    handle, request = await harness.start(40_000)
    await request_invoice(handle)
    harness.fake.pay(request.topup_id, "t-2")  # statusPayment now reports it too
    notice = paid_notice(request, "t-2")
    await asyncio.gather(
        *(handle.signal(TopUpWorkflow.payment_notified, notice) for _ in range(10))
    )
    view = await handle.result()
    assert view.state == "paid"
    # The provider keeps retrying after we finished; reconciliation sees a settled payment.
    for attempt in range(2):
        result = await harness.client.execute_workflow(
            PaymentReconciliation.run,
            ReconcileInput(provider="ODENGI", notice=notice),
            id=f"reconcile-t-2-{attempt}",
            task_queue=harness.task_queue,
        )
        assert result.outcome == "paid"
    entries = await harness.ledger_entries(request.client_id)
    assert [(e.op_key, e.amount_tyiyn) for e in entries] == [("topup:t-2", 40_000)]
    assert await harness.available(request.client_id) == 40_000


async def test_five_minutes_without_payment_cancels_and_expires(harness: Harness) -> None:
    handle, request = await harness.start()
    invoice = await request_invoice(handle)
    view = await handle.result()  # the time-skipping server runs the 5-minute life in no time
    assert view.state == "expired"
    fake_invoice = harness.fake.invoices[request.topup_id]
    assert fake_invoice.status == "canceled"
    assert harness.fake.calls["invoiceCancel"] == 1
    # polls at 1, 2, 3 and 4 minutes (the webhook is the main path), then the last check
    # after the cancel at 5 minutes
    assert harness.fake.calls["statusPayment"] == 5
    assert harness.fake.calls["createInvoice"] == 1
    assert (await harness.topup_row(request.topup_id)).state == "expired"
    assert await harness.ledger_entries(request.client_id) == []
    events = await harness.audit_events(request.topup_id)
    assert events == ["invoice_created", "invoice_cancelled", "topup_expired"]
    assert (await harness.topup_row(request.topup_id)).expires_at == invoice.expires_at


async def test_a_payment_racing_the_cancel_is_credited(harness: Harness) -> None:
    harness.fake.pay_on_cancel = True
    handle, request = await harness.start(30_000)
    await request_invoice(handle)
    view = await handle.result()
    assert view.state == "paid"
    assert await harness.available(request.client_id) == 30_000
    assert "cancel_refused" in await harness.audit_events(request.topup_id)
    await keep_history(handle, "topup_paid_racing_the_cancel")


async def test_amount_mismatch_needs_review_and_credits_nothing(harness: Harness) -> None:
    handle, request = await harness.start(50_000)
    await request_invoice(handle)
    await handle.signal(TopUpWorkflow.payment_notified, paid_notice(request, "t-3", amount=5_000))
    view = await handle.result()
    assert view.state == "needs_review"
    assert "5000" in (view.reason or "") and "50000" in (view.reason or "")
    assert await harness.ledger_entries(request.client_id) == []
    assert (await harness.topup_row(request.topup_id)).state == "needs_review"
    events = await harness.audit_events(request.topup_id)
    assert "payment_not_credited" in events and "topup_needs_review" in events
    assert await harness.count(ProviderTransaction, trans_id="t-3", status="review") == 1
    await keep_history(handle, "topup_amount_mismatch")


async def test_payment_after_expiry_is_reconciled_exactly_once(harness: Harness) -> None:
    handle, request = await harness.start(20_000)
    await request_invoice(handle)
    assert (await handle.result()).state == "expired"
    # The driver paid anyway (the provider let it through); its webhook arrives, twice.
    notice = paid_notice(request, "t-late")
    handles = [
        await harness.client.start_workflow(
            PaymentReconciliation.run,
            ReconcileInput(provider="ODENGI", notice=notice),
            id=f"reconcile-t-late-{attempt}",
            task_queue=harness.task_queue,
        )
        for attempt in range(2)
    ]
    results = [await h.result() for h in handles]
    await keep_history(handles[0], "reconciliation_late_payment")
    await keep_history(handles[1], "reconciliation_already_settled")
    assert [r.outcome for r in results] == ["paid", "paid"]
    entries = await harness.ledger_entries(request.client_id)
    assert [(e.op_key, e.amount_tyiyn) for e in entries] == [("topup:t-late", 20_000)]
    assert (await harness.topup_row(request.topup_id)).state == "paid"
    # A second, different transaction for the same top-up is not credited: it goes to review.
    other_handle = await harness.client.start_workflow(
        PaymentReconciliation.run,
        ReconcileInput(provider="ODENGI", notice=paid_notice(request, "t-other")),
        id="reconcile-t-other",
        task_queue=harness.task_queue,
    )
    other = await other_handle.result()
    await keep_history(other_handle, "reconciliation_second_trans_id")
    assert other.outcome == "needs_review"
    assert await harness.available(request.client_id) == 20_000
    assert (await harness.topup_row(request.topup_id)).state == "paid"


async def test_unknown_order_is_recorded_not_credited(harness: Harness) -> None:
    stray = PaymentNotice(
        trans_id="t-stray",
        status=PayStatus.PAID,
        order_id="not-ours",
        invoice_id=None,
        amount_tyiyn=999,
        currency="KGS",
    )
    handle = await harness.client.start_workflow(
        PaymentReconciliation.run,
        ReconcileInput(provider="ODENGI", notice=stray),
        id="reconcile-t-stray",
        task_queue=harness.task_queue,
    )
    result = await handle.result()
    await keep_history(handle, "reconciliation_unmatched")
    assert result.outcome == "unmatched"
    assert await harness.count(ProviderTransaction, trans_id="t-stray", status="review") == 1


@pytest.mark.parametrize(
    "faults",
    [
        ["timeout_after", "503", "timeout"],  # the first invoice exists, its answer was lost
        ["503", "503"],
    ],
)
async def test_provider_timeouts_and_5xx_are_retried_without_a_second_invoice(
    harness: Harness, faults: list[str]
) -> None:
    harness.fake.faults = {"createInvoice": list(faults), "statusPayment": ["503"]}
    harness.fake.pay_on_create = True  # the poll finds it paid
    handle, request = await harness.start(15_000)
    view = await handle.result()
    assert view.state == "paid"
    assert harness.fake.calls["createInvoice"] == len(faults) + 1
    assert list(harness.fake.invoices) == [request.topup_id]  # one invoice, however many tries
    assert view.invoice is not None
    assert view.invoice.invoice_id == harness.fake.invoices[request.topup_id].invoice_id
    assert await harness.available(request.client_id) == 15_000
    await keep_history(handle, f"topup_provider_retries_{len(faults)}")


async def test_retried_create_invoice_activity_reuses_the_stored_invoice(
    harness: Harness,
) -> None:
    from activities.payments import CreateInvoiceInput, PaymentActivities
    from payments.odengi import OdengiClient
    from payments.provider import ProviderName
    from tests.payments.fake_odengi import API_URL, MERCHANT_ID, PASSWORD

    provider = OdengiClient(
        name=ProviderName.ODENGI,
        merchant_id=MERCHANT_ID,
        password=PASSWORD,
        api_url=API_URL,
        result_url="https://x.test/",
        transport=harness.fake.transport(),
    )
    activities = PaymentActivities(harness.db_sessions, provider)
    request = CreateInvoiceInput(
        topup_id="direct1",
        client_id=str(uuid.uuid4()),
        method="qr",
        provider="ODENGI",
        amount_tyiyn=10_000,
        currency="KGS",
        description="d",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    first = await activities.create_invoice(request)
    second = await activities.create_invoice(request)
    assert first == second
    assert harness.fake.calls["createInvoice"] == 1
    await provider.aclose()


async def test_rejected_invoice_fails_the_topup_and_the_update(harness: Harness) -> None:
    harness.fake.refuse_create = "amount too small"
    handle, _ = await harness.start(1)
    with pytest.raises(WorkflowUpdateFailedError):
        await request_invoice(handle)
    view = await handle.result()
    assert view.state == "failed" and "amount too small" in (view.reason or "")
    assert harness.fake.calls["createInvoice"] == 1  # a rejection is not retried
    await keep_history(handle, "topup_invoice_refused")


async def test_hourly_sweep_settles_stale_topups_once(harness: Harness) -> None:
    client_id = str(uuid.uuid4())
    old = datetime.now(UTC) - timedelta(hours=2)
    async with harness.db_sessions() as session, session.begin():
        await session.execute(insert(ClientRow).values(id=client_id))
        for topup_id in ("stale-paid", "stale-unpaid", "stale-noinvoice"):
            session.add(
                TopUpRow(
                    id=topup_id,
                    client_id=client_id,
                    method="qr",
                    provider="ODENGI",
                    amount_tyiyn=12_000,
                    currency="KGS",
                    order_id=topup_id,
                    state="awaiting_payment" if topup_id != "stale-noinvoice" else "creating",
                    created_at=old,
                    updated_at=old,
                    expires_at=old + timedelta(minutes=5),
                )
            )
    for topup_id in ("stale-paid", "stale-unpaid"):
        harness.fake._answer("createInvoice", {"order_id": topup_id, "amount": 12_000})
        async with harness.db_sessions() as session, session.begin():
            row = await session.get(TopUpRow, topup_id)
            assert row is not None
            row.invoice_id = harness.fake.invoices[topup_id].invoice_id
    harness.fake.pay("stale-paid", "t-sweep")
    for run in range(2):
        result = await harness.client.execute_workflow(
            ReconcileStaleTopUps.run,
            SweepInput(),
            id=f"sweep-{run}",
            task_queue=harness.task_queue,
        )
        if run == 0:
            assert (result.checked, result.paid, result.expired) == (3, 1, 2)
        else:
            assert result.checked == 0
    assert (await harness.topup_row("stale-paid")).state == "paid"
    assert (await harness.topup_row("stale-unpaid")).state == "expired"
    assert (await harness.topup_row("stale-noinvoice")).state == "failed"
    assert harness.fake.invoices["stale-unpaid"].status == "canceled"
    assert await harness.available(client_id) == 12_000


async def test_an_unreadable_status_answer_ends_in_review_never_expired(harness: Harness) -> None:
    """statusPayment answers with a status nobody told us about: the invoice may be paid."""
    handle, request = await harness.start(20_000)
    await request_invoice(handle)
    harness.fake.invoices[request.topup_id].status = "hold"
    view = await handle.result()
    assert view.state == "needs_review"
    assert "'hold'" in (view.reason or "")
    assert (await harness.topup_row(request.topup_id)).state == "needs_review"
    events = await harness.audit_events(request.topup_id)
    assert "status_unreadable" in events and "topup_expired" not in events
    await keep_history(handle, "topup_unreadable_status")


async def test_an_unread_notice_is_rechecked_at_once_and_held_for_review(
    harness: Harness,
) -> None:
    handle, request = await harness.start(20_000)
    await request_invoice(handle)
    async with harness.db_sessions() as session, session.begin():
        session.add(
            ProviderTransaction(
                provider="ODENGI",
                trans_id="t-unread",
                topup_id=request.topup_id,
                status="unread",
                amount_tyiyn=20_000,
                currency="KGS",
                raw_notice={"status_pay": "0"},
                review_reason="status_pay '0' is not in the table",
            )
        )
    await handle.signal(
        TopUpWorkflow.payment_unreadable,
        UnreadNotice("t-unread", request.topup_id, None, "status_pay '0' is not in the table"),
    )
    view = await handle.result()
    assert view.state == "needs_review"
    assert "t-unread" in (view.reason or "")
    # the re-check at once, four polls, the last check
    assert harness.fake.calls["statusPayment"] == 6
    assert await harness.count(ProviderTransaction, trans_id="t-unread", status="review") == 1
    assert await harness.ledger_entries(request.client_id) == []
    await keep_history(handle, "topup_unread_notice")


async def test_the_sweep_settles_an_unread_notice_the_provider_confirms(harness: Harness) -> None:
    """An unread notice for a top-up whose workflow is gone: statusPayment reads the payment,
    the sweep credits it once, and the kept row is the paid transaction, not a review case."""
    client_id = str(uuid.uuid4())
    await harness.add_stale_topup("stale-unread", client_id, 12_000)
    harness.fake.pay("stale-unread", "t-unread-paid")
    old = datetime.now(UTC) - timedelta(hours=1)
    async with harness.db_sessions() as session, session.begin():
        for trans_id in ("t-unread-paid", "t-unread-other"):
            session.add(
                ProviderTransaction(
                    provider="ODENGI",
                    trans_id=trans_id,
                    topup_id="stale-unread",
                    status="unread",
                    amount_tyiyn=0,
                    currency="KGS",
                    raw_notice={"status_pay": "9"},
                    review_reason="status_pay '9' is not in the table",
                    created_at=old,
                    updated_at=old,
                )
            )
    handle = await harness.client.start_workflow(
        ReconcileStaleTopUps.run, SweepInput(), id="sweep-unread", task_queue=harness.task_queue
    )
    result = await handle.result()
    assert (result.unread, result.paid, result.needs_review) == (2, 1, 1)
    assert await harness.available(client_id) == 12_000
    assert await harness.count(ProviderTransaction, trans_id="t-unread-paid", status="paid") == 1
    assert await harness.count(ProviderTransaction, trans_id="t-unread-other", status="review") == 1
    assert (await harness.topup_row("stale-unread")).state == "paid"
    await keep_history(handle, "sweep_unread_notices")


async def test_the_sweep_sends_a_stale_topup_with_an_unreadable_status_to_review(
    harness: Harness,
) -> None:
    client_id = str(uuid.uuid4())
    await harness.add_stale_topup("stale-hold", client_id)
    harness.fake.invoices["stale-hold"].status = "hold"
    result = await harness.client.execute_workflow(
        ReconcileStaleTopUps.run, SweepInput(), id="sweep-hold", task_queue=harness.task_queue
    )
    assert (result.checked, result.needs_review, result.expired) == (1, 1, 0)
    row = await harness.topup_row("stale-hold")
    assert row.state == "needs_review"
    assert harness.fake.calls["invoiceCancel"] == 0  # a human decides, nothing is cancelled


async def test_a_refused_cancel_of_an_invoice_that_reads_awaiting_ends_in_review(
    harness: Harness,
) -> None:
    """The provider will not cancel (it says paid) while statusPayment reads "awaiting": our
    status table is probably wrong, so a human decides instead of `expired`."""
    harness.fake.refuse_cancel = True
    handle, request = await harness.start(20_000)
    await request_invoice(handle)
    view = await handle.result()
    assert view.state == "needs_review"
    assert "invoiceCancel was refused" in (view.reason or "")
    assert (await harness.topup_row(request.topup_id)).state == "needs_review"
    assert await harness.ledger_entries(request.client_id) == []
    await keep_history(handle, "topup_cancel_refused_awaiting")


async def test_the_sweep_sends_a_refused_cancel_that_reads_awaiting_to_review(
    harness: Harness,
) -> None:
    client_id = str(uuid.uuid4())
    await harness.add_stale_topup("stale-refused", client_id)
    harness.fake.refuse_cancel = True
    result = await harness.client.execute_workflow(
        ReconcileStaleTopUps.run, SweepInput(), id="sweep-refused", task_queue=harness.task_queue
    )
    assert (result.needs_review, result.expired) == (1, 0)
    assert (await harness.topup_row("stale-refused")).state == "needs_review"


async def test_recheck_of_an_unread_notice_for_a_closed_topup(harness: Harness) -> None:
    """The webhook's RecheckUnreadNotice: statusPayment confirms the notice's payment."""
    client_id = str(uuid.uuid4())
    await harness.add_stale_topup("closed-unread", client_id, 9_000)
    harness.fake.pay("closed-unread", "t-closed-unread")
    handle = await harness.client.start_workflow(
        RecheckUnreadNotice.run,
        RecheckInput(
            "ODENGI",
            "closed-unread",
            UnreadNotice("t-closed-unread", "closed-unread", None, "status_pay '9' unknown"),
        ),
        id="recheck-t-closed-unread",
        task_queue=harness.task_queue,
    )
    assert await handle.result() == "paid"
    assert await harness.available(client_id) == 9_000
    await keep_history(handle, "recheck_unread_notice_paid")
