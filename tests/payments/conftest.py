"""Payment test harness: a Temporal worker per test (unique task queue) with the real payment
and ledger activities on the real database, talking to a stand-in O!Dengi over MockTransport."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ledger import Ledger, LedgerActivities
from db.models import Client as ClientRow
from db.models import LedgerEntry, PaymentAudit
from db.models import TopUp as TopUpRow
from domain.contracts.topups import TopUpInput, TopUpView, topup_workflow_id
from payments.odengi import OdengiClient
from payments.provider import PaymentNotice, PayStatus, ProviderName
from tests.payments.fake_odengi import API_URL, MERCHANT_ID, PASSWORD, FakeOdengi
from tests.replay.recording import write_fixture
from worker import payments_worker_parts
from workflows.topup import TopUpWorkflow


@dataclass
class Harness:
    client: Client
    task_queue: str
    fake: FakeOdengi
    db_sessions: async_sessionmaker[AsyncSession]

    async def start(
        self, amount_tyiyn: int = 25_000, *, client_id: str | None = None
    ) -> tuple[WorkflowHandle[TopUpWorkflow, TopUpView], TopUpInput]:
        request = TopUpInput(
            topup_id=uuid.uuid4().hex[:16],
            client_id=client_id or str(uuid.uuid4()),
            amount_tyiyn=amount_tyiyn,
            method="qr",
            provider=ProviderName.ODENGI.value,
        )
        handle = await self.client.start_workflow(
            TopUpWorkflow.run,
            request,
            id=topup_workflow_id(request.topup_id),
            task_queue=self.task_queue,
        )
        return handle, request

    async def ledger_entries(self, client_id: str) -> list[LedgerEntry]:
        async with self.db_sessions() as session:
            rows = await session.scalars(
                select(LedgerEntry).where(LedgerEntry.client_id == client_id)
            )
            return list(rows)

    async def available(self, client_id: str) -> int:
        balance = await Ledger(self.db_sessions).balance(client_id)
        return balance.available_tyiyn

    async def topup_row(self, topup_id: str) -> TopUpRow:
        async with self.db_sessions() as session:
            row = await session.get(TopUpRow, topup_id)
        assert row is not None
        return row

    async def audit_events(self, topup_id: str) -> list[str]:
        async with self.db_sessions() as session:
            rows = await session.scalars(
                select(PaymentAudit.event)
                .where(PaymentAudit.topup_id == topup_id)
                .order_by(PaymentAudit.id)
            )
            return list(rows)

    async def add_stale_topup(
        self, topup_id: str, client_id: str, amount_tyiyn: int = 12_000, *, invoiced: bool = True
    ) -> TopUpRow:
        """An open top-up from two hours ago whose workflow is gone (the sweep's business)."""
        old = datetime.now(UTC) - timedelta(hours=2)
        invoice_id = None
        if invoiced:
            self.fake._answer("createInvoice", {"order_id": topup_id, "amount": amount_tyiyn})
            invoice_id = self.fake.invoices[topup_id].invoice_id
        row = TopUpRow(
            id=topup_id,
            client_id=client_id,
            method="qr",
            provider="ODENGI",
            amount_tyiyn=amount_tyiyn,
            currency="KGS",
            order_id=topup_id,
            invoice_id=invoice_id,
            state="awaiting_payment" if invoiced else "creating",
            created_at=old,
            updated_at=old,
            expires_at=old + timedelta(minutes=5),
        )
        async with self.db_sessions() as session, session.begin():
            await session.execute(insert(ClientRow).values(id=client_id).on_conflict_do_nothing())
            session.add(row)
        return row

    async def count(self, model: type, **where: object) -> int:
        async with self.db_sessions() as session:
            query = select(func.count()).select_from(model)
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return int(await session.scalar(query) or 0)


async def keep_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With EVPOWER_RECORD_HISTORIES=1, store this run's history as a replay fixture
    (tests/replay/payments_{name}.json)."""
    if os.environ.get("EVPOWER_RECORD_HISTORIES") != "1":
        return
    write_fixture(await handle.fetch_history(), f"payments_{name}")


def paid_notice(request: TopUpInput, trans_id: str, *, amount: int | None = None) -> PaymentNotice:
    return PaymentNotice(
        trans_id=trans_id,
        status=PayStatus.PAID,
        order_id=request.topup_id,
        invoice_id=None,
        amount_tyiyn=request.amount_tyiyn if amount is None else amount,
        currency="KGS",
    )


@pytest.fixture
def fake_odengi() -> FakeOdengi:
    return FakeOdengi()


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    fake_odengi: FakeOdengi,
) -> AsyncIterator[Harness]:
    provider = OdengiClient(
        name=ProviderName.ODENGI,
        merchant_id=MERCHANT_ID,
        password=PASSWORD,
        api_url=API_URL,
        result_url="https://evpower.test/api/v1/payment/webhook",
        transport=fake_odengi.transport(),
    )
    task_queue = f"payments-{uuid.uuid4().hex}"
    workflows, activities = payments_worker_parts(db_sessions, provider)
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=workflows,
        activities=[*activities, LedgerActivities(Ledger(db_sessions)).credit_topup],
    ):
        yield Harness(time_skipping_env.client, task_queue, fake_odengi, db_sessions)
    await provider.aclose()
