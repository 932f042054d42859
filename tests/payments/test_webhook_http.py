"""The webhook and the start endpoints over HTTP when things go wrong: Temporal down, a second
payment for one order, notices that are well signed but not money for this merchant."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.deps import ApiContext
from db.models import Client as ClientRow
from db.models import LedgerEntry, PaymentAudit, ProviderTransaction
from db.models import TopUp as TopUpRow
from domain.contracts.topups import reconciliation_workflow_id
from payments.provider import PayStatus, ProviderName
from payments.webhook import signed_notice_fields
from tests.payments.live import LiveSystem, live_system
from tests.payments.outage import CuttableProxy
from workflows.reconciliation import PaymentReconciliation

pytestmark = pytest.mark.integration


@pytest.fixture
async def live(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[LiveSystem]:
    async with live_system(temporal_env.client, db_sessions) as system:
        yield system


async def transactions(db_sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with db_sessions() as session:
        rows = await session.scalars(select(ProviderTransaction))
        return {row.trans_id: (row.status, row.credited_entry_id is not None) for row in rows}


async def settled(db_sessions: async_sessionmaker[AsyncSession], timeout_s: float = 30.0) -> Any:
    """The provider transactions once none is still only `received`."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await transactions(db_sessions)
        if all(status != "received" for status, _ in rows.values()):
            return rows
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.2)


async def test_temporal_down_is_503_and_the_webhook_still_keeps_the_payment(
    live: LiveSystem, temporal_env: WorkflowEnvironment
) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 21_000)
    invoice = await live.simulator.mark_paid(created["invoice_id"])
    fields = live.simulator.webhook_fields(invoice)

    proxy = CuttableProxy(temporal_env.client.service_client.config.target_host)
    through_proxy = await Client.connect(await proxy.start())
    outage_app = create_app(ApiContext(live.db_sessions, through_proxy, live.config))
    await proxy.cut()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=outage_app), base_url="http://evpower.test"
    ) as down:
        started = await down.post(
            "/api/v1/balance/topup-qr",
            json={"amount_tyiyn": 10_000},
            headers=live.auth(client_id, "while-temporal-is-down"),
        )
        assert started.status_code == 503, started.text
        assert started.json()["error"]["code"] == "temporal_unavailable"
        assert started.headers["retry-after"] == "5"

        notified = await down.post("/api/v1/payment/webhook", json=fields)
        assert notified.status_code == 503  # the provider retries
    # ...and the payment is on record before anybody was told, for the sweep if no retry comes.
    assert await transactions(live.db_sessions) == {invoice.trans_id: ("received", False)}

    retried = await live.http.post("/api/v1/payment/webhook", json=fields)  # Temporal is back
    assert retried.status_code == 200
    assert (await live.wait_state(client_id, created["topup_id"]))["state"] == "paid"
    assert await settled(live.db_sessions) == {invoice.trans_id: ("paid", True)}
    balance = await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))
    assert balance.json()["available_tyiyn"] == 21_000


async def test_two_payments_for_one_order_credit_once_and_keep_the_other(
    live: LiveSystem,
) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 14_000)
    invoice = await live.simulator.mark_paid(created["invoice_id"])
    first = live.simulator.webhook_fields(invoice)
    second = signed_notice_fields(
        trans_id="sim-second-payment",
        invoice_id=invoice.invoice_id,
        order_id=invoice.order_id,
        status=PayStatus.PAID,
        amount_tyiyn=invoice.amount_tyiyn,
        currency=invoice.currency,
        site_id=first["site_id"],
        mktime=first["mktime"],
        test=True,
        password=live.config.provider.effective_password,
    )
    answers = await asyncio.gather(
        live.http.post("/api/v1/payment/webhook", json=first),
        live.http.post("/api/v1/payment/webhook", json=second),
    )
    assert [a.status_code for a in answers] == [200, 200]
    rows = await settled(live.db_sessions)
    assert sorted(rows.values()) == [("paid", True), ("review", False)]
    async with live.db_sessions() as session:
        credits = list(await session.scalars(select(LedgerEntry.amount_tyiyn)))
    assert credits == [14_000]
    assert (await live.wait_state(client_id, created["topup_id"]))["state"] == "paid"


async def add_topup(db_sessions: async_sessionmaker[AsyncSession], topup_id: str) -> None:
    now = datetime.now(UTC)
    async with db_sessions() as session, session.begin():
        await session.execute(insert(ClientRow).values(id=f"c-{topup_id}").on_conflict_do_nothing())
        session.add(
            TopUpRow(
                id=topup_id,
                client_id=f"c-{topup_id}",
                method="qr",
                provider="ODENGI",
                amount_tyiyn=10_000,
                currency="KGS",
                order_id=topup_id,
                invoice_id=f"inv-{topup_id}",
                state="awaiting_payment",
                expires_at=now - timedelta(minutes=1),
            )
        )


@pytest.mark.parametrize(
    ("test", "site_id", "outcome"),
    [
        (True, "123", "needs_review"),  # a test payment reaching the production merchant
        (False, "999", "needs_review"),  # another site's payment
        (False, "123", "paid"),  # the real thing
    ],
)
async def test_with_odengi_only_live_payments_to_this_site_are_credited(
    temporal_env: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    test: bool,
    site_id: str,
    outcome: str,
) -> None:
    async with live_system(
        temporal_env.client,
        db_sessions,
        provider={
            "provider": ProviderName.ODENGI,
            "merchant_id": "123",
            "password": "pw",
            "api_url": "http://127.0.0.1:9/unused",
        },  # a live endpoint: test payments refused
    ) as odengi:
        topup_id = f"scr-{uuid.uuid4().hex[:10]}"
        await add_topup(db_sessions, topup_id)
        trans_id = f"t-{uuid.uuid4().hex[:10]}"
        fields = signed_notice_fields(
            trans_id=trans_id,
            invoice_id=f"inv-{topup_id}",
            order_id=topup_id,
            status=PayStatus.PAID,
            amount_tyiyn=10_000,
            currency="KGS",
            site_id=site_id,
            mktime="1764000000",
            test=test,
            password="pw",
        )
        response = await odengi.http.post("/api/v1/payment/webhook", data=fields)
        assert response.json() == {"status": "ok", "routed": "reconciliation"}
        handle = odengi.temporal.get_workflow_handle_for(
            PaymentReconciliation.run, reconciliation_workflow_id(trans_id)
        )
        assert (await handle.result()).outcome == outcome
    credited = outcome == "paid"
    assert await transactions(db_sessions) == {
        trans_id: ("paid" if credited else "review", credited)
    }
    async with db_sessions() as session:
        events = list(await session.scalars(select(PaymentAudit.event)))
        balance = list(await session.scalars(select(LedgerEntry.amount_tyiyn)))
    assert balance == ([10_000] if credited else [])
    assert ("webhook_received" if credited else "webhook_untrusted") in events
