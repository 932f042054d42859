"""The hourly sweep: payments the webhook recorded but nobody settled are credited once (or put
in review), and top-ups the provider never resolves cannot starve newer ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.models import ProviderTransaction
from tests.payments.conftest import Harness, keep_history
from workflows.reconciliation import ReconcileStaleTopUps, SweepInput, SweepResult


async def receive(
    harness: Harness, trans_id: str, topup_id: str | None, amount_tyiyn: int, *, age: timedelta
) -> None:
    """What the webhook writes before it signals anyone (status `received`)."""
    at = datetime.now(UTC) - age
    async with harness.db_sessions() as session, session.begin():
        session.add(
            ProviderTransaction(
                provider="ODENGI",
                trans_id=trans_id,
                topup_id=topup_id,
                invoice_id=None,
                status="received",
                amount_tyiyn=amount_tyiyn,
                currency="KGS",
                created_at=at,
                updated_at=at,
            )
        )


async def sweep(
    harness: Harness, request: SweepInput | None = None, *, record_as: str | None = None
) -> SweepResult:
    handle = await harness.client.start_workflow(
        ReconcileStaleTopUps.run,
        request or SweepInput(),
        id=f"sweep-{uuid.uuid4().hex}",
        task_queue=harness.task_queue,
    )
    result = await handle.result()
    if record_as:
        await keep_history(handle, record_as)
    return result


async def statuses(harness: Harness) -> dict[str, tuple[str, bool]]:
    async with harness.db_sessions() as session:
        rows = await session.scalars(select(ProviderTransaction))
        return {row.trans_id: (row.status, row.credited_entry_id is not None) for row in rows}


async def test_a_recorded_payment_nobody_settled_is_credited_once(harness: Harness) -> None:
    """The webhook recorded it, then Temporal was down (503): the provider may never retry."""
    client_id = str(uuid.uuid4())
    await harness.add_stale_topup("receipt-topup", client_id, 12_000)
    harness.fake.pay("receipt-topup", "t-recorded")
    await receive(harness, "t-recorded", "receipt-topup", 12_000, age=timedelta(hours=1))
    await receive(harness, "t-stranger", None, 5_000, age=timedelta(hours=1))
    await receive(harness, "t-fresh", "receipt-topup", 12_000, age=timedelta(seconds=1))

    first = await sweep(harness, record_as="sweep_receipts")
    assert (first.receipts, first.paid, first.needs_review) == (2, 1, 1)
    assert first.checked == 0  # the top-up was paid by its receipt before the top-up pass
    assert await harness.available(client_id) == 12_000
    assert (await harness.topup_row("receipt-topup")).state == "paid"
    assert await statuses(harness) == {
        "t-recorded": ("paid", True),
        "t-stranger": ("review", False),  # no top-up of ours: a human looks
        "t-fresh": ("received", False),  # its workflow may still be settling it
    }
    again = await sweep(harness)
    assert (again.receipts, again.paid) == (0, 0)
    assert await harness.available(client_id) == 12_000


async def test_top_ups_the_provider_never_answers_for_do_not_starve_newer_ones(
    harness: Harness,
) -> None:
    client_id = str(uuid.uuid4())
    for topup_id in ("stuck-1", "stuck-2", "newer"):
        await harness.add_stale_topup(topup_id, client_id)
    for topup_id in ("stuck-1", "stuck-2"):
        harness.fake.unreachable_invoices.add(harness.fake.invoices[topup_id].invoice_id)

    first = await sweep(harness, SweepInput(limit=2))
    assert (first.checked, first.unresolved) == (2, 2)  # the two oldest, both unanswered
    assert (await harness.topup_row("newer")).state == "awaiting_payment"

    second = await sweep(harness, SweepInput(limit=2), record_as="sweep_stuck_and_newer")
    assert second.checked == 2
    # Never checked goes first: with "oldest first" it would wait behind the stuck ones forever.
    assert (await harness.topup_row("newer")).state == "expired"
    assert (second.expired, second.unresolved) == (1, 1)
