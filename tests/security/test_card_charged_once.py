"""A card is charged at most once, inside the TopUp workflow: concurrent identical requests
make one provider charge and one credit, and the card never sits in Temporal's history."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.deps import ApiContext
from api.errors import ApiError
from api.v1.card_payment import H2HRequest, pay_by_card
from db.models import CardCharge, LedgerEntry, PaymentAudit
from domain.contracts.topups import topup_workflow_id
from tests.payments.live import LiveSystem, live_system

pytestmark = pytest.mark.integration

NUMBER = "4111111111111111"
CARD = {"card_number": NUMBER, "exp_month": 12, "exp_year": 2030, "cvc": "987"}
AMOUNT = 25_000


@pytest.fixture
async def live(
    temporal_env: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[LiveSystem]:
    async with live_system(
        temporal_env.client, db_sessions, rate_limit_money="1000/minute"
    ) as system:
        yield system


async def count(live: LiveSystem, model: type, *where: Any) -> int:
    async with live.db_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def assert_charged_once(live: LiveSystem, client_id: str, topup_id: str) -> None:
    state = await live.wait_state(client_id, topup_id)
    assert state["state"] == "paid", state
    forwarded = PaymentAudit.event == "h2h_forwarded"
    assert await count(live, PaymentAudit, forwarded, PaymentAudit.topup_id == topup_id) == 1
    assert await count(live, LedgerEntry, LedgerEntry.client_id == client_id) == 1
    balance = await live.http.get("/api/v1/balance/current", headers=live.auth(client_id))
    assert balance.json()["available_tyiyn"] == AMOUNT
    assert await count(live, CardCharge) == 0  # every sealed card is gone
    history = await live.temporal.get_workflow_handle(topup_workflow_id(topup_id)).fetch_history()
    text = json.dumps([MessageToJson(event) for event in history.events])
    assert NUMBER not in text  # the workflow only ever saw a key to a deleted row


async def test_twenty_concurrent_identical_requests_charge_the_card_once(live: LiveSystem) -> None:
    client_id = str(uuid.uuid4())
    headers = live.auth(client_id, "same-card-payment")
    responses = await asyncio.gather(
        *(
            live.http.post(
                "/api/v1/payment/h2h-create",
                json={"amount_tyiyn": AMOUNT, **CARD},
                headers=headers,
            )
            for _ in range(20)
        )
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    topup_ids = {r.json()["topup_id"] for r in responses if r.status_code == 201}
    assert len(topup_ids) == 1
    await assert_charged_once(live, client_id, topup_ids.pop())


async def test_identical_requests_past_the_idempotency_layer_still_charge_once(
    live: LiveSystem,
) -> None:
    # The race the old check-then-insert lost: twenty requests that all got past the
    # idempotency middleware (its lease expired, say) reach the workflow together.
    client_id = str(uuid.uuid4())
    context = ApiContext(live.db_sessions, live.temporal, live.config)
    body = H2HRequest(amount_tyiyn=AMOUNT, **CARD)
    answers = await asyncio.gather(
        *(pay_by_card(context, client_id, body, "raced-key") for _ in range(20)),
        return_exceptions=True,
    )
    results = [answer for answer in answers if not isinstance(answer, BaseException)]
    # Temporal admits 10 updates in flight per workflow; a request still crowded out after
    # its backoff is told to retry with its key (503): never a second charge.
    refused = [answer for answer in answers if isinstance(answer, BaseException)]
    assert all(isinstance(error, ApiError) and error.status == 503 for error in refused), refused
    assert results, refused
    assert {result.status for result in results} <= {"accepted", "already_submitted"}
    assert len({result.topup_id for result in results}) == 1
    await assert_charged_once(live, client_id, results[0].topup_id)
