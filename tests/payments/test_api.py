"""Top-ups over HTTP on the real stack: QR top-up -> pay -> balance up by exactly the amount;
webhooks forged, replayed, concurrent, mismatched; card payments; who may see what."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.v1 import balance as balance_api
from db.models import LedgerEntry, PaymentAudit, TopUp
from domain.contracts.topups import reconciliation_workflow_id
from payments.provider import ProviderName
from runtime.commands import pay as pay_command
from runtime.embedded import free_port
from tests.payments.live import LiveSystem, live_system
from workflows.reconciliation import PaymentReconciliation

pytestmark = pytest.mark.integration


@pytest.fixture
async def live(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[LiveSystem]:
    async with live_system(temporal_env.client, db_sessions) as system:
        yield system


def printed_json(out: str) -> dict[str, object]:
    """The JSON document `evpower pay` printed, among any log lines."""
    start = out.rindex("{\n")
    end = out.index("\n}", start) + 2
    document: dict[str, object] = json.loads(out[start:end])
    return document


async def count(live: LiveSystem, model: type, *where: Any) -> int:
    async with live.db_sessions() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(total or 0)


async def test_qr_topup_then_pay_raises_the_balance_by_exactly_the_amount(
    live: LiveSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 25_000, key="first-topup")
    assert created["amount"] == "250.00" and created["currency"] == "KGS"
    assert created["qr_image_url"].startswith(live.base_url)
    # The same Idempotency-Key is the same top-up, not a second invoice.
    again = await live.topup_qr(client_id, 25_000, key="first-topup")
    assert (again["topup_id"], again["invoice_id"]) == (created["topup_id"], created["invoice_id"])

    png = await live.http.get(created["qr_image_url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    page = await live.http.get(created["qr_url"])
    assert page.status_code == 200 and "Pay" in page.text and "250.00" in page.text
    # The page's own policy: its image and form on this origin, its style by hash, no script.
    policy = page.headers["content-security-policy"]
    assert "img-src 'self'" in policy and "form-action 'self'" in policy
    assert "style-src 'sha256-" in policy and "script-src" not in policy

    args = argparse.Namespace(invoice_id=created["invoice_id"], base_url=live.base_url)
    assert await pay_command.run(args) == 0
    paid = printed_json(capsys.readouterr().out)
    assert paid["webhook_status"] == 200

    status = await live.wait_state(client_id, created["topup_id"])
    assert status["state"] == "paid" and status["paid"] is True
    balance = (await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))).json()
    assert balance == {
        "available_tyiyn": 25_000,
        "held_tyiyn": 0,
        "currency": "KGS",
        "available": "250.00",
    }

    # Paying again re-sends the webhook (a provider retry) after the workflow closed: it goes
    # to reconciliation, which finds the payment settled. Still exactly one credit.
    assert await pay_command.run(args) == 0
    capsys.readouterr()
    handle = live.temporal.get_workflow_handle_for(
        PaymentReconciliation.run, reconciliation_workflow_id(str(paid["trans_id"]))
    )
    assert (await handle.result()).outcome == "paid"
    history = (await live.http.get("/api/v1/balance/history", headers=live.auth(client_id))).json()
    assert [(i["operation"], i["available_change_tyiyn"]) for i in history["items"]] == [
        ("credit_topup", 25_000)
    ]
    assert history["next_before_id"] is None


async def test_forged_webhook_is_refused_audited_and_changes_nothing(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 10_000)
    invoice = await live.simulator.mark_paid(created["invoice_id"])
    fields = live.simulator.webhook_fields(invoice)
    forged = {**fields, "amount": "1000000"}  # the hash no longer matches
    response = await live.http.post("/api/v1/payment/webhook", json=forged)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert await count(live, PaymentAudit, PaymentAudit.event == "webhook_rejected") == 1
    assert await count(live, LedgerEntry) == 0
    async with live.db_sessions() as session:
        row = await session.get(TopUp, created["topup_id"])
    assert row is not None and row.state == "awaiting_payment"
    # The audit never keeps the hash.
    async with live.db_sessions() as session:
        details = await session.scalars(select(PaymentAudit.details))
        assert all(fields["hash"] not in json.dumps(d) for d in details)


async def test_webhook_replayed_ten_times_concurrently_credits_once(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 33_300)
    invoice = await live.simulator.mark_paid(created["invoice_id"])
    fields = live.simulator.webhook_fields(invoice)
    responses = await asyncio.gather(
        *(live.http.post("/api/v1/payment/webhook", json=fields) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [200] * 10
    assert (await live.wait_state(client_id, created["topup_id"]))["state"] == "paid"
    # Late retries of the same webhook, as a form body this time.
    late = await live.http.post("/api/v1/payment/webhook", data=fields)
    assert late.status_code == 200
    handle = live.temporal.get_workflow_handle_for(
        PaymentReconciliation.run, reconciliation_workflow_id(invoice.trans_id or "")
    )
    await handle.result()
    assert await count(live, LedgerEntry, LedgerEntry.client_id == client_id) == 1
    balance = (await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))).json()
    assert balance["available_tyiyn"] == 33_300


async def test_mismatched_amount_needs_review(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    created = await live.topup_qr(client_id, 20_000)
    invoice = await live.simulator.mark_paid(created["invoice_id"])
    fields = live.simulator.webhook_fields(
        invoice.__class__(**{**invoice.__dict__, "amount_tyiyn": 2_000})
    )
    assert (await live.http.post("/api/v1/payment/webhook", json=fields)).status_code == 200
    status = await live.wait_state(client_id, created["topup_id"])
    assert status["state"] == "needs_review" and status["paid"] is False
    assert await count(live, LedgerEntry) == 0


async def test_status_is_for_the_owner_only(live: LiveSystem) -> None:
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    created = await live.topup_qr(owner, 10_000)
    mine = await live.http.get(
        "/api/v1/payment/status", params={"topup_id": created["topup_id"]}, headers=live.auth(owner)
    )
    assert mine.status_code == 200 and mine.json()["state"] == "awaiting_payment"
    theirs = await live.http.get(
        "/api/v1/payment/status",
        params={"topup_id": created["topup_id"]},
        headers=live.auth(stranger),
    )
    assert theirs.status_code == 404
    anonymous = await live.http.get(
        "/api/v1/payment/status", params={"topup_id": created["topup_id"]}
    )
    assert anonymous.status_code == 401


@pytest.mark.parametrize("amount", [999, 5_000_001, 100.5, "1000", True])
async def test_bad_amounts_are_refused_before_anything_starts(
    live: LiveSystem, amount: object
) -> None:
    client_id = str(uuid.uuid4())
    response = await live.http.post(
        "/api/v1/balance/topup-qr",
        json={"amount_tyiyn": amount},
        headers=live.auth(client_id, str(uuid.uuid4())),
    )
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"code", "message"}
    assert await count(live, TopUp) == 0


async def test_card_topup_gives_the_hosted_page(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    response = await live.http.post(
        "/api/v1/balance/topup-card",
        json={"amount_tyiyn": 15_000},
        headers=live.auth(client_id, "card-1"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["payment_url"].startswith(live.base_url)


CARD = {"card_number": "4111111111111111", "exp_month": 12, "exp_year": 2099 - 70, "cvc": "123"}


async def test_h2h_card_payment_with_the_simulated_provider(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    response = await live.http.post(
        "/api/v1/payment/h2h-create",
        json={"amount_tyiyn": 45_000, **CARD, "card_holder": "AIDA K"},
        headers=live.auth(client_id, "h2h-1"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["card"] == "411111******1111"
    status = await live.wait_state(client_id, body["topup_id"])
    assert status["state"] == "paid"
    balance = (await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))).json()
    assert balance["available_tyiyn"] == 45_000
    async with live.db_sessions() as session:
        details = [json.dumps(d) for d in await session.scalars(select(PaymentAudit.details))]
    assert details and not any("4111111111111111" in d or '"123"' in d for d in details)


async def test_h2h_declined_and_invalid_cards(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    declined = await live.http.post(
        "/api/v1/payment/h2h-create",
        json={"amount_tyiyn": 10_000, **CARD, "card_number": "4000000000000002"},
        headers=live.auth(client_id, "h2h-declined"),
    )
    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    invalid = await live.http.post(
        "/api/v1/payment/h2h-create",
        json={"amount_tyiyn": 10_000, **CARD, "card_number": "4111111111111112"},
        headers=live.auth(client_id, "h2h-invalid"),
    )
    assert invalid.status_code == 422
    assert "4111111111111112" not in invalid.text
    assert await count(live, TopUp) == 1  # only the declined one was started


async def test_h2h_with_odengi_and_no_h2h_url_is_501(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with live_system(
        temporal_env.client,
        db_sessions,
        provider={
            "provider": ProviderName.ODENGI,
            "merchant_id": "123",
            "password": "pw",
            "api_url": "http://127.0.0.1:9/unused",
        },
    ) as odengi:
        response = await odengi.http.post(
            "/api/v1/payment/h2h-create",
            json={"amount_tyiyn": 10_000, **CARD},
            headers=odengi.auth(str(uuid.uuid4()), "h2h-501"),
        )
        assert response.status_code == 501
        assert "ODENGI_H2H_URL" in response.json()["error"]["message"]
        # and the simulator does not exist with the real provider
        assert (await odengi.http.get("/simulator/odengi/invoices/1")).status_code == 404
    assert isinstance(response, httpx.Response)


async def test_an_unreachable_provider_gets_a_clear_gateway_error(
    temporal_env: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: the update's cancelled long poll used to surface as a 500."""
    monkeypatch.setattr(balance_api, "INVOICE_WAIT_S", 2.0)
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    async with live_system(
        temporal_env.client, db_sessions, provider={"public_base_url": nobody_listens}
    ) as live:
        response = await live.http.post(
            "/api/v1/balance/topup-qr",
            json={"amount_tyiyn": 10_000},
            headers=live.auth(str(uuid.uuid4()), "provider-down"),
        )
    assert response.status_code in (502, 504), response.text
    assert response.json()["error"]["code"] in {"provider_error", "provider_timeout"}
